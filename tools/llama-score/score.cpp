// SPDX-License-Identifier: MIT OR Apache-2.0
//
// llama-score: teacher-forced scoring of a claimed llama.cpp answer.
//
// Loads the model with the context llama-server builds from the same arguments
// (common_params_parse with LLAMA_EXAMPLE_SERVER, common_init_from_params), decodes the prompt
// in the chunks llama-server decodes it in, then the CLAIMED output tokens in batches with
// logits at every output position, and runs the sampler chain llama-server builds from the
// recorded generation_settings over each position's logits, accepting the claimed token, so
// penalties and the random number generator follow the original generation.
//
// The batched pass is the fast path only: its kernels do not compute bit for bit what the
// one-token decoding of generation computes. A position is decided by the batched logits only
// when the sampler there picks the claimed token and would still pick it if every gap between
// two logits moved by up to "margin.logit": greedy, the claimed token leads the second best by
// at least that much; seeded, the draw falls inside the part of the claimed token's interval
// that stays its own when the tokens around it gain or lose that much against it, change
// places with it, or come in or drop out at the filters' edge (less "margin.draw" at each
// end). At any other position llama-score falls back: it drops the output tokens of the
// key-value cache that were not decoded one at a time, decodes the claimed tokens up to that
// position one at a time over the prompt (as generation did), and decides the position with
// those logits, from the sampler state before it, under the tight "tolerance". Then it
// returns to the batched logits. A disagreement is reported only from one-token logits, and
// the check stops there.
//
// One request (stdin, one JSON object), or with --serve one request per stdin line and one
// answer per stdout line, the model kept loaded between requests with the same engine
// arguments:
//   {"model": "m.gguf", "prompt": "text" | [ids], "output": [ids],
//    "ctx": 512, "batch": 2048, "ubatch": 512, "flash_attn": "on", "repack": true,
//    "threads": 2, "settings": {generation_settings as llama-server reports them},
//    "margin": {"logit": 0.5, "draw": 1e-3}, "tolerance": {"logit": 1e-3, "draw": 1e-3},
//    "one_token": false, "eos": false, "n_top": 5}
// "one_token": true decides every position with one-token logits (and still reports what the
// batched pass picked there). "eos": true also checks that the sampler picks an
// end-of-generation token after the last claimed one.
// Answer: per output position the claimed token, the token the sampler picks, the claimed
// token's log-probability under the raw logits and its probability after the sampler chain,
// the top alternatives, the greedy gap and, for a seeded draw, the draw and the claimed
// token's interval, which pass decided it ("batch", "one_token"; position 0 comes from the
// prompt's last token, as in generation: "prompt") and, where it fell back, what the batched
// pass picked; then the timings. Exit status 0 with an answer, 2 with {"error": "..."} (with
// --serve an error answers that request and the next line is read).

#include "arg.h"
#include "common.h"
#include "log.h"
#include "llama.h"
#include "sampling.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using json = nlohmann::ordered_json;

namespace {

struct request_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string & message) {
    throw request_error(message);
}

void answer(const json & out) {
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
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
void apply_settings(common_params_sampling & s, const json & g) {
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

// A loaded model and its context, kept between requests with the same engine arguments.
struct engine {
    std::vector<std::string> args;
    common_params params;
    common_init_result_ptr init;
    llama_model * model = nullptr;
    llama_context * ctx = nullptr;
};

// How a position came out.
struct evaluation {
    json entry;
    llama_token picked = LLAMA_TOKEN_NULL;
    bool agrees = false;                 // the sampler picks the claimed token (or, after the
                                         // last one, an end-of-generation token when expected)
    std::optional<double> tie_gap;       // |picked - claimed| logits as the sampler ranked them
    std::optional<double> top2_gap;      // greedy: best minus second best
    std::optional<double> draw_distance; // seeded: draw to the claimed interval
    std::optional<double> draw_margin;   // seeded: draw to the nearer edge of its interval
    std::optional<double> safe_lo;       // seeded: the claimed interval that holds under any
    std::optional<double> safe_hi;       // change of the logit gaps up to the margin
};

struct limits {
    double logit;
    double draw;
};

limits read_limits(const json & req, const char * key, limits fallback) {
    if (!req.contains(key) || req.at(key).is_null()) {
        return fallback;
    }
    const json & j = req.at(key);
    return {get_or<double>(j, "logit", fallback.logit), get_or<double>(j, "draw", fallback.draw)};
}

json handle(const json & req, std::unique_ptr<engine> & eng) {
    const double t_start = now_ms();
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
    } catch (const request_error &) {
        throw;
    } catch (const std::exception & e) {
        fail(std::string("the request lacks a value: ") + e.what());
    }

    bool loaded_now = false;
    if (!eng || eng->args != args) {
        eng.reset();
        auto fresh = std::make_unique<engine>();
        fresh->args = args;
        std::vector<char *> cargs;
        for (auto & a : fresh->args) {
            cargs.push_back(a.data());
        }
        if (!common_params_parse(static_cast<int>(cargs.size()), cargs.data(), fresh->params, LLAMA_EXAMPLE_SERVER)) {
            fail("llama-server's argument parser refused the settings");
        }
        // Logits at every output position of a batch (llama-server asks for one per sequence).
        fresh->params.n_outputs_max = 0;
        fresh->params.n_outputs_max_per_seq = 0;
        fresh->init = common_init_from_params(fresh->params);
        fresh->model = fresh->init->model();
        fresh->ctx = fresh->init->context();
        if (fresh->model == nullptr || fresh->ctx == nullptr) {
            fail("cannot load the model " + fresh->params.model.path);
        }
        eng = std::move(fresh);
        loaded_now = true;
    }
    llama_model * model = eng->model;
    llama_context * ctx = eng->ctx;
    llama_memory_t mem = llama_get_memory(ctx);
    llama_memory_clear(mem, true);

    common_params_sampling sparams = eng->params.sampling;
    try {
        apply_settings(sparams, req.at("settings"));
    } catch (const request_error &) {
        throw;
    } catch (const std::exception & e) {
        fail(std::string("settings: ") + e.what());
    }

    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    std::vector<llama_token> prompt;
    std::vector<llama_token> output;
    try {
        const json & jp = req.at("prompt");
        if (jp.is_string()) {
            // What llama-server's /completion does with a string prompt.
            prompt = common_tokenize(vocab, jp.get<std::string>(), true, true);
        } else {
            prompt = jp.get<std::vector<llama_token>>();
        }
        output = req.at("output").get<std::vector<llama_token>>();
    } catch (const std::exception & e) {
        fail(std::string("the request's prompt or output: ") + e.what());
    }
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
    const bool one_token = get_or<bool>(req, "one_token", false);
    const bool eos_expected = get_or<bool>(req, "eos", false) && invalid.is_null();
    const int n_top = get_or<int>(req, "n_top", 5);
    const limits margin = read_limits(req, "margin", {0.5, 1e-3});
    const limits tolerance = read_limits(req, "tolerance", {1e-3, 1e-3});
    const double t_loaded = now_ms();

    common_sampler * smpl = nullptr;
    try {
        smpl = common_sampler_init(model, sparams);
    } catch (const std::exception & e) {
        fail(std::string("sampler: ") + e.what());
    }
    if (smpl == nullptr) {
        fail("the sampler chain could not be built");
    }
    // The chain llama-server samples with, owned here so that its state before a position
    // can be kept and restored when the position is decided again from one-token logits.
    llama_sampler * chain = llama_sampler_clone(common_sampler_get(smpl));
    llama_sampler * saved = llama_sampler_clone(chain);
    common_sampler_free(smpl);
    const std::unique_ptr<llama_sampler, decltype(&llama_sampler_free)> chain_owner(chain, llama_sampler_free);
    const std::unique_ptr<llama_sampler, decltype(&llama_sampler_free)> saved_owner(saved, llama_sampler_free);
    // As llama-server's init_sampler: the prompt's tokens are accepted, not generated.
    for (llama_token t : prompt) {
        llama_sampler_accept(chain, t);
    }

    const int n_batch = static_cast<int>(llama_n_batch(ctx));
    const int n_ubatch = static_cast<int>(llama_n_ubatch(ctx));
    llama_batch batch = llama_batch_init(std::max(n_batch, 1), 0, 1);
    struct batch_guard {
        llama_batch * b;
        ~batch_guard() { llama_batch_free(*b); }
    } bguard{&batch};
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
    auto decode_prompt = [&]() {
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
    };
    decode_prompt();
    const double t_prompt = now_ms();

    const int n_out = static_cast<int>(output.size());
    double decode_ms = 0.0;
    double fallback_ms = 0.0;
    double sample_ms = 0.0;
    int one_token_decodes = 0;
    int rebuilds = 0;

    std::mt19937 rng(sparams.seed);  // the dist sampler's generator, drawn in step
    std::mt19937 rng_saved = rng;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const bool dist_last = [&] {
        const int n = llama_sampler_chain_n(chain);
        return n > 0 && std::string(llama_sampler_name(llama_sampler_chain_get(chain, n - 1))) == "dist";
    }();
    const bool greedy = sparams.temp <= 0.0f;
    // The lowest temperature the chain may divide the logits by (dynamic temperature).
    const float min_temp = std::max(0.0f, sparams.temp - std::max(0.0f, sparams.dynatemp_range));

    std::vector<llama_token_data> cur(n_vocab);

    // Runs the chain over `logits` for position `pos` (pos == n_out: after the last claimed
    // token); the chain and the mirrored generator advance as in generation.
    auto evaluate = [&](const float * logits, int pos) {
        const double t0 = now_ms();
        evaluation ev;
        if (logits == nullptr) fail("no logits at an output position");
        for (int i = 0; i < n_vocab; ++i) {
            cur[i] = {i, logits[i], 0.0f};
        }
        llama_token_data_array cur_p = {cur.data(), cur.size(), -1, false};
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
        const bool after_last = pos >= n_out;
        const bool picked_eog = llama_vocab_is_eog(vocab, picked);
        // After the last claimed token the "claimed" token is the end of generation the
        // sampler picked, when it picked one: its margins are measured as any position's.
        const llama_token claimed = !after_last ? output[pos] : (picked_eog ? picked : LLAMA_TOKEN_NULL);
        ev.picked = picked;
        ev.agrees = after_last ? picked_eog : picked == claimed;

        json & entry = ev.entry;
        entry["position"] = pos;
        if (!after_last) {
            entry["claimed"] = claimed;
            entry["claimed_text"] = common_token_to_piece(ctx, claimed, true);
        }
        entry["picked"] = picked;
        entry["picked_text"] = common_token_to_piece(ctx, picked, true);
        entry["picked_eog"] = picked_eog;
        const double log_z = log_sum_exp(logits, n_vocab);
        if (!after_last) {
            entry["logprob"] = logits[claimed] - log_z;
        }
        entry["top"] = top_raw(logits, n_vocab, n_top, log_z, ctx);

        // The claimed and the picked token's logits as ranked (null: filtered out before):
        // near-equal ones may change places under a kernel's rounding.
        auto ranked_logit = [&](llama_token id) -> std::optional<double> {
            for (const auto & c : ranked) {
                if (c.id == id) return std::isfinite(c.logit) ? std::optional<double>(c.logit) : std::nullopt;
            }
            return std::nullopt;
        };
        auto opt = [](std::optional<double> v) { return v ? json(*v) : json(nullptr); };
        const auto picked_logit = ranked_logit(picked);
        entry["picked_logit"] = opt(picked_logit);
        if (!after_last) {
            const auto claimed_logit = ranked_logit(claimed);
            entry["claimed_logit"] = opt(claimed_logit);
            if (picked_logit && claimed_logit) {
                ev.tie_gap = std::fabs(*picked_logit - *claimed_logit);
            }
        }
        // The greedy margin: over the logits the temperature sampler saw (after penalties and
        // biases), the gap between the best and the claimed token (0 when it is the best), and
        // between the best and the second best.
        if (greedy && !before_temp.empty()) {
            float best = -INFINITY, second = -INFINITY, claimed_l = -INFINITY;
            for (const auto & c : before_temp) {
                if (c.logit > best) {
                    second = best;
                    best = c.logit;
                } else if (c.logit > second) {
                    second = c.logit;
                }
                if (c.id == claimed) claimed_l = c.logit;
            }
            if (std::isfinite(second)) ev.top2_gap = best - second;
            entry["top2_gap"] = opt(ev.top2_gap);
            if (!after_last) {
                entry["claimed_gap"] = std::isfinite(claimed_l) ? json(best - claimed_l) : json(nullptr);
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
            if (dist_last && !greedy && std::isfinite(lo)) {
                // The part of the claimed interval that stays the claimed token's under any
                // change of up to margin.logit in the gap between two logits: the tokens
                // ranked before the claimed one may gain or lose that much against it, those
                // within it may change places with it, and the tokens at the filters' edge
                // may come in or drop out.
                const double g = margin.logit / std::max(1e-6, static_cast<double>(min_temp));
                const double up = std::exp(g), down = std::exp(-g);
                size_t c = 0;
                bool sorted = true;
                float min_kept = INFINITY;
                for (size_t i = 0; i < cur_p.size; ++i) {
                    if (cur_p.data[i].id == claimed) c = i;
                    if (i > 0 && cur_p.data[i].logit > cur_p.data[i - 1].logit) sorted = false;
                    min_kept = std::min(min_kept, cur_p.data[i].logit);
                }
                const double lc = cur_p.data[c].logit;
                double a_max = 0.0, b_min = 0.0, a_min = 0.0, b_max = 0.0, edge = 0.0;
                for (size_t i = 0; i < cur_p.size; ++i) {
                    if (i == c) continue;
                    const double d = cur_p.data[i].logit - lc;
                    const double t = std::exp(d);
                    const bool before = i < c;
                    const bool may_swap = sorted && std::fabs(d) <= g;
                    if (before || may_swap) a_max += t * up; else b_min += t * down;
                    if (before && !may_swap) a_min += t * down; else b_max += t * up;
                    if (cur_p.data[i].logit <= min_kept + g) edge += cur_p.data[i].p;
                }
                const double slack = 2.0 * edge * up + margin.draw;
                ev.safe_lo = a_max / (a_max + 1.0 + b_min) + slack;
                ev.safe_hi = (a_min + 1.0) / (a_min + 1.0 + b_max) - slack;
            }
            if (dist_last && !greedy) {
                entry["draw"] = draw;
                if (std::isfinite(lo)) {
                    entry["interval"] = {lo, hi};
                    const double distance = draw < lo ? lo - draw : (draw > hi ? draw - hi : 0.0);
                    ev.draw_distance = distance;
                    entry["draw_distance"] = distance;
                    if (distance == 0.0) {
                        ev.draw_margin = std::min(draw - lo, hi - draw);
                    }
                } else {
                    entry["interval"] = nullptr;
                }
            }
        }
        sample_ms += now_ms() - t0;
        return ev;
    };

    // Whether the batched logits decide a position: the claimed token picked, and by more
    // than the margin the batched pass may move a decision by.
    auto clear_enough = [&](const evaluation & ev) {
        if (!ev.agrees) return false;
        if (greedy) return ev.top2_gap.has_value() && *ev.top2_gap >= margin.logit;
        if (dist_last) {
            const double u = ev.entry.value("draw", NAN);
            return ev.safe_lo && ev.safe_hi && *ev.safe_lo < u && u < *ev.safe_hi;
        }
        return false;  // another final sampler (mirostat): always from one-token logits
    };
    // The verdict from one-token logits: agree, a near tie within the tight tolerance, or a
    // disagreement.
    auto verdict = [&](const evaluation & ev, int pos) -> const char * {
        if (ev.agrees) return "agree";
        if (pos >= n_out) return "disagree";
        if (ev.tie_gap && *ev.tie_gap <= tolerance.logit) return "near_tie";
        if (!greedy && ev.draw_distance && *ev.draw_distance <= tolerance.draw) return "near_tie";
        return "disagree";
    };

    // The key-value cache holds the prompt and output[0, exact) decoded one token at a time
    // over it (as generation did), then possibly batched output tokens up to `in_cache`.
    int exact = 0;
    int in_cache = 0;
    const llama_pos n_swa = llama_model_n_swa(model);
    // The logits of position `pos` (>= 1) from one-token decoding over an exact prefix.
    auto one_token_logits = [&](int pos) -> const float * {
        const double t0 = now_ms();
        bool rebuild = !llama_memory_seq_rm(mem, 0, n_prompt + exact, -1);
        if (!rebuild && n_swa > 0) {
            // Sliding-window layers may have dropped cells the next token attends to.
            const llama_pos first_needed = std::max(0, n_prompt + exact - n_swa + 1);
            const llama_pos pos_min = llama_memory_seq_pos_min(mem, 0);
            rebuild = pos_min > first_needed;
        }
        if (rebuild) {
            llama_memory_clear(mem, true);
            decode_prompt();
            exact = 0;
            ++rebuilds;
        }
        for (int i = exact; i < pos; ++i) {
            batch.n_tokens = 0;
            add(output[i], n_prompt + i, i == pos - 1);
            decode("an output token, one at a time");
            ++one_token_decodes;
        }
        exact = pos;
        in_cache = pos;
        fallback_ms += now_ms() - t0;
        return llama_get_logits_ith(ctx, -1);
    };

    json positions = json::array();
    json next = nullptr;
    json fallbacks = json::array();
    bool stopped = false;

    // Records a decided position; false when the check stops there.
    auto record = [&](evaluation & ev, int pos, const char * by, const evaluation * batched) {
        const char * v = std::string(by) == "batch" ? "agree" : verdict(ev, pos);
        ev.entry["decided_by"] = by;
        ev.entry["verdict"] = v;
        if (batched != nullptr) {
            // What the batched logits gave there, for the report and for measuring the gap.
            const json & b = batched->entry;
            ev.entry["batch_picked"] = batched->picked;
            ev.entry["batch_picked_text"] = b["picked_text"];
            for (const char * key : {"logprob", "claimed_logit", "top2_gap", "interval"}) {
                if (b.contains(key)) ev.entry[std::string("batch_") + key] = b[key];
            }
            fallbacks.push_back(pos);
        }
        const bool go_on = std::string(v) != "disagree";
        if (pos < n_out) {
            positions.push_back(ev.entry);
            if (go_on) llama_sampler_accept(chain, output[pos]);
        } else {
            next = ev.entry;
        }
        return go_on;
    };
    // Decides position `pos` from batched logits, falling back to one-token logits; `keep`
    // saves the batched rows still needed before one-token decoding overwrites them.
    auto decide = [&](int pos, const float * batched_logits, const std::function<void()> & keep) {
        llama_sampler_copy(chain, saved);
        rng_saved = rng;
        evaluation ev = evaluate(batched_logits, pos);
        if (!one_token && clear_enough(ev)) {
            return record(ev, pos, "batch", nullptr);
        }
        keep();
        llama_sampler_copy(saved, chain);
        rng = rng_saved;
        evaluation exact_ev = evaluate(one_token_logits(pos), pos);
        return record(exact_ev, pos, "one_token", &ev);
    };

    const int last_pos = eos_expected ? n_out : n_out - 1;  // the last position to decide
    // Position 0 from the prompt's last token, decoded as llama-server decodes it (nothing to
    // decide when no token is claimed and no end of generation is expected).
    if (last_pos >= 0) {
        evaluation ev = evaluate(llama_get_logits_ith(ctx, -1), 0);
        stopped = !record(ev, 0, "prompt", nullptr);
    }
    int next_pos = 1;
    // Batches of at most `chunk` output tokens; a fallback inside a batch copies the batch's
    // remaining rows out before the one-token decodes overwrite them.
    const int chunk = std::max(1, std::min(n_batch, 256));
    std::vector<float> kept;
    while (!stopped && next_pos <= last_pos) {
        const double t0 = now_ms();
        // Logits for position p come from output[p - 1]: decode from the first output token
        // not in the cache; rows before next_pos are recomputed and not used.
        const int first = in_cache;
        const int end = std::min(n_out, first + chunk);
        if (!llama_memory_seq_rm(mem, 0, n_prompt + first, -1)) {
            fail("the key-value cache cannot drop the output tokens after a one-token decode");
        }
        batch.n_tokens = 0;
        for (int i = first; i < end; ++i) {
            add(output[i], n_prompt + i, true);
        }
        decode("the output tokens");
        in_cache = end;
        decode_ms += now_ms() - t0;
        // Row r holds the logits of position first + r + 1. A fallback copies the rows after
        // its own out of the context first.
        const int rows = end - first;
        int kept_from = rows;  // rows >= kept_from are in `kept`
        const int last_here = std::min(last_pos, end);
        for (int pos = next_pos; pos <= last_here && !stopped; ++pos) {
            const int row = pos - 1 - first;
            const float * logits = row >= kept_from
                ? kept.data() + static_cast<size_t>(row - kept_from) * n_vocab
                : llama_get_logits_ith(ctx, row);
            auto keep = [&]() {
                if (kept_from < rows) return;  // already copied: the context holds none
                kept.resize(static_cast<size_t>(rows - row - 1) * n_vocab);
                for (int r = row + 1; r < rows; ++r) {
                    std::memcpy(kept.data() + static_cast<size_t>(r - row - 1) * n_vocab,
                                llama_get_logits_ith(ctx, r), sizeof(float) * n_vocab);
                }
                kept_from = row + 1;
            };
            stopped = !decide(pos, logits, keep);
            next_pos = pos + 1;
        }
    }

    json out;
    out["prompt_tokens"] = prompt;
    out["n_vocab"] = n_vocab;
    out["one_token"] = one_token;
    out["positions"] = positions;
    out["next"] = next;
    out["invalid"] = invalid;
    out["stopped"] = stopped;
    out["fallbacks"] = fallbacks;
    out["margin"] = {{"logit", margin.logit}, {"draw", margin.draw}};
    out["tolerance"] = {{"logit", tolerance.logit}, {"draw", tolerance.draw}};
    out["timings"] = {
        {"loaded", loaded_now},
        {"load_ms", t_loaded - t_start},
        {"prompt_ms", t_prompt - t_loaded},
        {"decode_ms", decode_ms},
        {"fallback_ms", fallback_ms},
        {"one_token_decodes", one_token_decodes},
        {"rebuilds", rebuilds},
        {"sample_ms", sample_ms},
        {"total_ms", now_ms() - t_start},
    };
    return out;
}

}  // namespace

int main(int argc, char ** argv) {
    const bool serve = argc > 1 && std::string(argv[1]) == "--serve";
    if (argc > 2 || (argc == 2 && !serve)) {
        answer({{"error", "usage: llama-score [--serve] < request"}});
        return 2;
    }
    common_init();
    // Quiet: the answer is the only thing on stdout, and the log would bury errors.
    common_log_set_verbosity_thold(-1);
    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (level == GGML_LOG_LEVEL_ERROR) {
            std::fputs(text, stderr);
        }
    }, nullptr);
    llama_backend_init();
    llama_numa_init(GGML_NUMA_STRATEGY_DISABLED);
    std::unique_ptr<engine> eng;

    auto run = [&](const std::string & text) -> bool {
        json req;
        try {
            req = json::parse(text);
        } catch (const std::exception & e) {
            answer({{"error", std::string("the request is not JSON: ") + e.what()}});
            return false;
        }
        try {
            answer(handle(req, eng));
            return true;
        } catch (const request_error & e) {
            answer({{"error", e.what()}});
        } catch (const std::exception & e) {
            answer({{"error", std::string("the request: ") + e.what()}});
        }
        return false;
    };

    int status = 0;
    if (serve) {
        std::string line;
        while (std::getline(std::cin, line)) {
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            run(line);
        }
    } else {
        std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
        status = run(text) ? 0 : 2;
    }
    eng.reset();
    llama_backend_free();
    return status;
}
