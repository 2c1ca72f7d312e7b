// SPDX-License-Identifier: MIT OR Apache-2.0
//
// llama-score: teacher-forced scoring of a claimed llama.cpp answer.
//
// Reads one JSON request on stdin, loads the model with the context llama-server builds from
// the same arguments (common_params_parse with LLAMA_EXAMPLE_SERVER, common_init_from_params),
// decodes the prompt in the chunks llama-server decodes it in, then the CLAIMED output tokens
// in one batch (or one at a time with "sequential": true) with logits at every output
// position, and runs the sampler chain llama-server builds from the recorded
// generation_settings over each position's logits, accepting the claimed token, so penalties
// and the random number generator follow the original generation.
//
// Request:
//   {"model": "m.gguf", "prompt": "text" | [ids], "output": [ids],
//    "ctx": 512, "batch": 2048, "ubatch": 512, "flash_attn": "on", "repack": true,
//    "threads": 2, "settings": {generation_settings as llama-server reports them},
//    "sequential": false, "n_top": 5}
// Answer (stdout): per output position the claimed token, the token the sampler picks, the
// claimed token's log-probability under the raw logits and its probability after the
// sampler chain, the top alternatives, the greedy margin and, for a seeded draw, the draw and
// the claimed token's interval; then what the sampler picks after the last claimed token and
// the timings. Exit status 0 with an answer, 2 with {"error": "..."} on stdout.

#include "arg.h"
#include "common.h"
#include "log.h"
#include "llama.h"
#include "sampling.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using json = nlohmann::ordered_json;

namespace {

[[noreturn]] void fail(const std::string & message) {
    json out = {{"error", message}};
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
    std::exit(2);
}

double now_ms() {
    return static_cast<double>(llama_time_us()) / 1000.0;
}

template <typename T> T get_or(const json & j, const char * key, T fallback) {
    if (!j.contains(key) || j.at(key).is_null()) {
        return fallback;
    }
    return j.at(key).get<T>();
}

// The sampler settings llama-server reports in generation_settings, set on the parameters
// it would have built them from (the values reported are the values in force).
void apply_settings(common_params_sampling & s, const json & g, int32_t & n_predict) {
    auto num = [&](const char * key, auto & field) {
        using T = std::decay_t<decltype(field)>;
        if (g.contains(key) && !g.at(key).is_null()) {
            field = g.at(key).get<T>();
        }
    };
    if (!g.contains("seed") || !g.at("seed").is_number_unsigned()) {
        fail("settings.seed is missing or not an unsigned integer");
    }
    s.seed = g.at("seed").get<uint32_t>();
    num("temperature", s.temp);
    num("dynatemp_range", s.dynatemp_range);
    num("dynatemp_exponent", s.dynatemp_exponent);
    num("top_k", s.top_k);
    num("top_p", s.top_p);
    num("min_p", s.min_p);
    num("top_n_sigma", s.top_n_sigma);
    num("xtc_probability", s.xtc_probability);
    num("xtc_threshold", s.xtc_threshold);
    num("typical_p", s.typ_p);
    num("repeat_last_n", s.penalty_last_n);
    num("repeat_penalty", s.penalty_repeat);
    num("presence_penalty", s.penalty_present);
    num("frequency_penalty", s.penalty_freq);
    num("dry_multiplier", s.dry_multiplier);
    num("dry_base", s.dry_base);
    num("dry_allowed_length", s.dry_allowed_length);
    num("dry_penalty_last_n", s.dry_penalty_last_n);
    num("mirostat", s.mirostat);
    num("mirostat_tau", s.mirostat_tau);
    num("mirostat_eta", s.mirostat_eta);
    num("adaptive_target", s.adaptive_target);
    num("adaptive_decay", s.adaptive_decay);
    num("min_keep", s.min_keep);
    num("ignore_eos", s.ignore_eos);
    num("n_predict", n_predict);
    if (g.contains("dry_sequence_breakers") && g.at("dry_sequence_breakers").is_array()) {
        s.dry_sequence_breakers = g.at("dry_sequence_breakers").get<std::vector<std::string>>();
    }
    if (g.contains("samplers") && g.at("samplers").is_array()) {
        s.samplers = common_sampler_types_from_names(g.at("samplers").get<std::vector<std::string>>());
    } else {
        fail("settings.samplers is missing");
    }
    // generation_settings report the biases in force, those ignore_eos added included; a
    // bias of minus infinity is written as null.
    s.logit_bias.clear();
    if (g.contains("logit_bias") && g.at("logit_bias").is_array()) {
        for (const auto & b : g.at("logit_bias")) {
            const float bias = b.at("bias").is_null() ? -INFINITY : b.at("bias").get<float>();
            s.logit_bias.push_back({b.at("token").get<llama_token>(), bias});
        }
    }
    const std::string grammar = get_or<std::string>(g, "grammar", "");
    if (!grammar.empty()) {
        fail("the answer was constrained by a grammar, which llama-score does not reproduce");
    }
    s.backend_sampling = false;
}

struct candidate {
    llama_token id;
    float logit;
};

// The n best of the raw logits, with log-probabilities under a softmax over all of them.
json top_raw(const float * logits, int n_vocab, int n_top, double log_z, llama_context * ctx) {
    std::vector<candidate> all(n_vocab);
    for (int i = 0; i < n_vocab; ++i) {
        all[i] = {i, logits[i]};
    }
    const int n = std::min(n_top, n_vocab);
    std::partial_sort(all.begin(), all.begin() + n, all.end(),
                      [](const candidate & a, const candidate & b) { return a.logit > b.logit; });
    json top = json::array();
    for (int i = 0; i < n; ++i) {
        top.push_back({{"id", all[i].id},
                       {"text", common_token_to_piece(ctx, all[i].id, true)},
                       {"logprob", all[i].logit - log_z}});
    }
    return top;
}

double log_sum_exp(const float * logits, int n_vocab) {
    float max_l = -INFINITY;
    for (int i = 0; i < n_vocab; ++i) {
        max_l = std::max(max_l, logits[i]);
    }
    double sum = 0.0;
    for (int i = 0; i < n_vocab; ++i) {
        sum += std::exp(static_cast<double>(logits[i] - max_l));
    }
    return max_l + std::log(sum);
}

}  // namespace

int main(int argc, char ** argv) {
    (void) argc;
    (void) argv;
    json req;
    try {
        req = json::parse(std::cin);
    } catch (const std::exception & e) {
        fail(std::string("the request is not JSON: ") + e.what());
    }

    const double t_start = now_ms();
    common_params params;
    std::vector<std::string> args;
    try {
        // The arguments replay starts llama-server with, parsed by llama-server's own parser.
        args = {"llama-score",
                "--model", req.at("model").get<std::string>(),
                "--ctx-size", std::to_string(req.at("ctx").get<int64_t>()),
                "--batch-size", std::to_string(req.at("batch").get<int64_t>()),
                "--ubatch-size", std::to_string(req.at("ubatch").get<int64_t>()),
                "--flash-attn", req.at("flash_attn").get<std::string>(),
                req.at("repack").get<bool>() ? "--repack" : "--no-repack",
                "--parallel", "1",
                "--cache-ram", "0"};
        if (req.contains("threads") && !req.at("threads").is_null()) {
            args.push_back("--threads");
            args.push_back(std::to_string(req.at("threads").get<int64_t>()));
        }
    } catch (const std::exception & e) {
        fail(std::string("the request lacks a value: ") + e.what());
    }
    std::vector<char *> cargs;
    for (auto & a : args) {
        cargs.push_back(a.data());
    }
    common_init();
    // Quiet: the answer is the only thing on stdout, and the log would bury errors.
    common_log_set_verbosity_thold(-1);
    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (level == GGML_LOG_LEVEL_ERROR) {
            std::fputs(text, stderr);
        }
    }, nullptr);
    if (!common_params_parse(static_cast<int>(cargs.size()), cargs.data(), params, LLAMA_EXAMPLE_SERVER)) {
        fail("llama-server's argument parser refused the settings");
    }
    // Logits at every output position of a batch (llama-server asks for one per sequence).
    params.n_outputs_max = 0;
    params.n_outputs_max_per_seq = 0;

    int32_t n_predict = -1;
    try {
        apply_settings(params.sampling, req.at("settings"), n_predict);
    } catch (const std::exception & e) {
        fail(std::string("settings: ") + e.what());
    }

    llama_backend_init();
    llama_numa_init(params.numa);
    auto init = common_init_from_params(params);
    llama_model * model = init->model();
    llama_context * ctx = init->context();
    if (model == nullptr || ctx == nullptr) {
        fail("cannot load the model " + params.model.path);
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    std::vector<llama_token> prompt;
    const json & jp = req.at("prompt");
    if (jp.is_string()) {
        // What llama-server's /completion does with a string prompt.
        prompt = common_tokenize(vocab, jp.get<std::string>(), true, true);
    } else {
        prompt = jp.get<std::vector<llama_token>>();
    }
    std::vector<llama_token> output = req.at("output").get<std::vector<llama_token>>();
    for (llama_token t : prompt) {
        if (t < 0 || t >= n_vocab) fail("a prompt token id is outside the vocabulary");
    }
    // A claimed token this vocabulary does not have is a finding, not an error: the positions
    // before it are scored, and the answer names it.
    json invalid = nullptr;
    for (size_t i = 0; i < output.size(); ++i) {
        if (output[i] < 0 || output[i] >= n_vocab) {
            invalid = {{"position", i}, {"id", output[i]}};
            output.resize(i);
            break;
        }
    }
    if (prompt.empty()) {
        fail("the prompt is empty");
    }
    const int n_ctx = static_cast<int>(llama_n_ctx(ctx));
    if (static_cast<int>(prompt.size() + output.size()) + 1 > n_ctx) {
        fail("prompt and output do not fit the context");
    }
    const bool sequential = get_or<bool>(req, "sequential", false);
    const int n_top = get_or<int>(req, "n_top", 5);
    const double t_loaded = now_ms();

    common_sampler * smpl = nullptr;
    try {
        smpl = common_sampler_init(model, params.sampling);
    } catch (const std::exception & e) {
        fail(std::string("sampler: ") + e.what());
    }
    if (smpl == nullptr) {
        fail("the sampler chain could not be built");
    }
    // As llama-server's init_sampler: the prompt's tokens are accepted, not generated.
    for (llama_token t : prompt) {
        common_sampler_accept(smpl, t, false);
    }

    const int n_batch = static_cast<int>(llama_n_batch(ctx));
    const int n_ubatch = static_cast<int>(llama_n_ubatch(ctx));
    llama_batch batch = llama_batch_init(std::max(n_batch, 1), 0, 1);
    auto add = [&](llama_token id, llama_pos pos, bool logits) {
        batch.token[batch.n_tokens] = id;
        batch.pos[batch.n_tokens] = pos;
        batch.n_seq_id[batch.n_tokens] = 1;
        batch.seq_id[batch.n_tokens][0] = 0;
        batch.logits[batch.n_tokens] = logits;
        batch.n_tokens++;
    };
    auto decode = [&](const char * what) {
        const int32_t ret = llama_decode(ctx, batch);
        if (ret != 0) {
            fail(std::string("llama_decode failed (") + std::to_string(ret) + ") on " + what);
        }
    };

    // The prompt in llama-server's chunks: n_batch tokens, and for a model whose memory cannot
    // be rolled back (sliding-window attention, recurrent state) a break 4 + n_ubatch and 4
    // tokens before the end, where llama-server makes its checkpoints.
    const bool checkpoints = llama_model_n_swa(model) > 0 || llama_model_is_recurrent(model) ||
                             llama_model_is_hybrid(model);
    const int n_prompt = static_cast<int>(prompt.size());
    int done = 0;
    while (done < n_prompt) {
        batch.n_tokens = 0;
        while (done < n_prompt && batch.n_tokens < n_batch) {
            add(prompt[done], done, false);
            ++done;
            if (checkpoints) {
                bool stop = false;
                for (int offset : {4 + n_ubatch, 4}) {
                    if (n_prompt == done + std::min(n_batch, offset)) stop = true;
                }
                if (stop) break;
            }
        }
        if (done == n_prompt) {
            batch.logits[batch.n_tokens - 1] = true;
        }
        decode("the prompt");
    }
    const double t_prompt = now_ms();

    // Logits for position i (predicting output[i]) live in row `rows[i]` of the batch that
    // computed them; position 0's come from the prompt's last token.
    const int n_out = static_cast<int>(output.size());
    json positions = json::array();
    double t_decode = t_prompt - t_start;  // replaced below
    double decode_ms = 0.0;
    double sample_ms = 0.0;

    std::mt19937 rng(params.sampling.seed);  // the dist sampler's generator, drawn in step
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const bool dist_last = [&] {
        llama_sampler * chain = common_sampler_get(smpl);
        const int n = llama_sampler_chain_n(chain);
        return n > 0 && std::string(llama_sampler_name(llama_sampler_chain_get(chain, n - 1))) == "dist";
    }();
    const bool greedy = params.sampling.temp <= 0.0f;

    std::vector<llama_token_data> cur(n_vocab);
    json next = nullptr;

    // Scores position `pos` from the logits at batch row `row`; returns the picked token.
    auto score = [&](int pos, int row) {
        const double t0 = now_ms();
        const float * logits = llama_get_logits_ith(ctx, row);
        if (logits == nullptr) fail("no logits at an output position");
        for (int i = 0; i < n_vocab; ++i) {
            cur[i] = {i, logits[i], 0.0f};
        }
        llama_token_data_array cur_p = {cur.data(), cur.size(), -1, false};
        llama_sampler * chain = common_sampler_get(smpl);
        const int n_smpl = llama_sampler_chain_n(chain);
        // The candidates as the temperature sampler received them (after penalties, biases
        // and filters), else as the last sampler did: the logits the decision ranks by.
        std::vector<llama_token_data> before_temp;
        std::vector<llama_token_data> before_last;
        for (int i = 0; i < n_smpl; ++i) {
            llama_sampler * s = llama_sampler_chain_get(chain, i);
            const std::string name = llama_sampler_name(s);
            if (name == "temp" || name == "temp-ext") {
                before_temp.assign(cur_p.data, cur_p.data + cur_p.size);
            }
            if (i == n_smpl - 1) {
                before_last.assign(cur_p.data, cur_p.data + cur_p.size);
            }
            llama_sampler_apply(s, &cur_p);
        }
        const auto & ranked = before_temp.empty() ? before_last : before_temp;
        const double draw = dist_last ? uniform(rng) : NAN;
        if (cur_p.selected < 0 || cur_p.selected >= static_cast<int64_t>(cur_p.size)) {
            fail("the sampler chain selected no token");
        }
        const llama_token picked = cur_p.data[cur_p.selected].id;
        const llama_token claimed = pos < n_out ? output[pos] : LLAMA_TOKEN_NULL;

        json entry;
        entry["position"] = pos;
        if (claimed != LLAMA_TOKEN_NULL) {
            entry["claimed"] = claimed;
            entry["claimed_text"] = common_token_to_piece(ctx, claimed, true);
        }
        entry["picked"] = picked;
        entry["picked_text"] = common_token_to_piece(ctx, picked, true);
        entry["picked_eog"] = llama_vocab_is_eog(vocab, picked);
        const double log_z = log_sum_exp(logits, n_vocab);
        if (claimed != LLAMA_TOKEN_NULL) {
            entry["logprob"] = logits[claimed] - log_z;
        }
        entry["top"] = top_raw(logits, n_vocab, n_top, log_z, ctx);

        // The claimed and the picked token's logits as ranked (null: filtered out before):
        // near-equal ones may change places under a kernel's rounding.
        auto ranked_logit = [&](llama_token id) -> json {
            for (const auto & c : ranked) {
                if (c.id == id) return std::isfinite(c.logit) ? json(c.logit) : json(nullptr);
            }
            return nullptr;
        };
        entry["picked_logit"] = ranked_logit(picked);
        if (claimed != LLAMA_TOKEN_NULL) {
            entry["claimed_logit"] = ranked_logit(claimed);
        }
        // The greedy margin: over the logits the temperature sampler saw (after penalties and
        // biases), the gap between the best and the claimed token (0 when it is the best), and
        // between the best and the second best.
        if (greedy && !before_temp.empty()) {
            float best = -INFINITY, second = -INFINITY, claimed_logit = -INFINITY;
            for (const auto & c : before_temp) {
                if (c.logit > best) {
                    second = best;
                    best = c.logit;
                } else if (c.logit > second) {
                    second = c.logit;
                }
                if (c.id == claimed) claimed_logit = c.logit;
            }
            entry["top2_gap"] = std::isfinite(second) ? json(best - second) : json(nullptr);
            if (claimed != LLAMA_TOKEN_NULL) {
                entry["claimed_gap"] = std::isfinite(claimed_logit) ? json(best - claimed_logit) : json(nullptr);
            }
        }
        // The claimed token's probability after the chain's filters, and its interval in the
        // cumulative distribution the draw falls into.
        if (claimed != LLAMA_TOKEN_NULL) {
            double cum = 0.0, lo = NAN, hi = NAN, p = 0.0;
            for (size_t i = 0; i < cur_p.size; ++i) {
                const double pi = cur_p.data[i].p;
                if (cur_p.data[i].id == claimed) {
                    lo = cum;
                    hi = cum + pi;
                    p = pi;
                }
                cum += pi;
            }
            entry["p"] = p;
            if (dist_last && !greedy) {
                entry["draw"] = draw;
                if (std::isfinite(lo)) {
                    entry["interval"] = {lo, hi};
                    const double distance = draw < lo ? lo - draw : (draw > hi ? draw - hi : 0.0);
                    entry["draw_distance"] = distance;
                } else {
                    entry["interval"] = nullptr;
                }
            }
        }
        sample_ms += now_ms() - t0;
        return std::make_pair(entry, picked);
    };

    // Scores every position, then accepts the claimed token there.
    auto score_and_accept = [&](int pos, int row) {
        auto [entry, picked] = score(pos, row);
        (void) picked;
        if (pos < n_out) {
            positions.push_back(entry);
            common_sampler_accept(smpl, output[pos], true);
        } else {
            next = entry;
        }
    };

    // Position 0 from the prompt's last token.
    score_and_accept(0, -1);
    if (sequential) {
        for (int i = 0; i < n_out; ++i) {
            const double t0 = now_ms();
            batch.n_tokens = 0;
            add(output[i], n_prompt + i, true);
            decode("an output token");
            decode_ms += now_ms() - t0;
            score_and_accept(i + 1, -1);
        }
    } else {
        int i = 0;
        while (i < n_out) {
            const double t0 = now_ms();
            batch.n_tokens = 0;
            const int first = i;
            while (i < n_out && batch.n_tokens < n_batch) {
                add(output[i], n_prompt + i, true);
                ++i;
            }
            decode("the output tokens");
            decode_ms += now_ms() - t0;
            for (int k = first; k < i; ++k) {
                score_and_accept(k + 1, k - first);
            }
        }
    }
    (void) t_decode;

    json out;
    out["prompt_tokens"] = prompt;
    out["n_vocab"] = n_vocab;
    out["sequential"] = sequential;
    out["positions"] = positions;
    out["next"] = invalid.is_null() ? next : json(nullptr);
    out["invalid"] = invalid;
    out["timings"] = {
        {"load_ms", t_loaded - t_start},
        {"prompt_ms", t_prompt - t_loaded},
        {"decode_ms", decode_ms},
        {"sample_ms", sample_ms},
        {"total_ms", now_ms() - t_start},
    };
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
    common_sampler_free(smpl);
    llama_batch_free(batch);
    llama_backend_free();
    return 0;
}
