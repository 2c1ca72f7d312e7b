/*
 * Signs an answer through the C ABI, verifies it, and tries the documented failure cases.
 * Built and run by tests/c_program.rs, which checks what it prints:
 *
 *   version <version>
 *   event <event JSON>
 *   salt <64 hex>
 *   verify <code> <verdict JSON>
 *   rc <case> <code>           one line per failure case
 *   threads <number of successful signatures>
 *
 * Usage: sign_and_verify <64-hex secret key>
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provenance.h"

static const char *TEMPLATE =
    "{\"model\":{\"name\":\"gemma3:270m\"},\"sampling\":{\"seed\":42,\"temperature\":0.8}}";
static const char *OUTPUT = "The sky is blue.";
static const char *PROMPT = "Why is the sky blue?";

static ProvenanceSigner *signer;

/* Signs with the given arguments, prints `rc <name> <code>`, frees everything. */
static void sign_case(const char *name, const ProvenanceSigner *s, const char *record,
                      const uint8_t *output, size_t output_len, const char *mime,
                      const uint8_t *prompt, size_t prompt_len, int want_event, int want_salt) {
    char *event = NULL, *salt = NULL, *err = NULL;
    int rc = provenance_sign(s, record, output, output_len, mime, prompt, prompt_len,
                             want_event ? &event : NULL, want_salt ? &salt : NULL, &err);
    printf("rc %s %d\n", name, rc);
    if (rc != PROVENANCE_OK && err == NULL) {
        printf("rc %s-no-message 1\n", name);
    }
    if (err != NULL) {
        fprintf(stderr, "%s: %s\n", name, err);
    }
    provenance_string_free(event);
    provenance_string_free(salt);
    provenance_string_free(err);
}

static void verify_case(const char *name, const char *json) {
    char *verdict = NULL, *err = NULL;
    int rc = provenance_verify(json, &verdict, &err);
    printf("rc %s %d\n", name, rc);
    provenance_string_free(verdict);
    provenance_string_free(err);
}

static void *sign_in_thread(void *arg) {
    (void)arg;
    char *event = NULL;
    int rc = provenance_sign(signer, TEMPLATE, (const uint8_t *)OUTPUT, strlen(OUTPUT), NULL,
                             NULL, 0, &event, NULL, NULL);
    int ok = rc == PROVENANCE_OK && event != NULL;
    provenance_string_free(event);
    return ok ? (void *)1 : NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <64-hex secret key>\n", argv[0]);
        return 2;
    }
    printf("version %s\n", provenance_version());

    char *err = NULL;
    signer = provenance_signer_new(argv[1], &err);
    if (signer == NULL) {
        fprintf(stderr, "provenance_signer_new: %s\n", err ? err : "(no message)");
        provenance_string_free(err);
        return 1;
    }

    /* The answer, signed with a prompt commitment. */
    char *event = NULL, *salt = NULL;
    int rc = provenance_sign(signer, TEMPLATE, (const uint8_t *)OUTPUT, strlen(OUTPUT), NULL,
                             (const uint8_t *)PROMPT, strlen(PROMPT), &event, &salt, &err);
    if (rc != PROVENANCE_OK) {
        fprintf(stderr, "provenance_sign: %d %s\n", rc, err ? err : "(no message)");
        return 1;
    }
    printf("event %s\n", event);
    printf("salt %s\n", salt);

    char *verdict = NULL;
    rc = provenance_verify(event, &verdict, &err);
    printf("verify %d %s\n", rc, verdict ? verdict : "null");
    provenance_string_free(verdict);

    /* A tampered copy: one character of the signature changed. */
    char *tampered = strdup(event);
    char *sig = strstr(tampered, "\"sig\":\"");
    if (sig == NULL) {
        return 1;
    }
    sig += 7;
    *sig = *sig == '0' ? '1' : '0';
    verify_case("verify_tampered", tampered);
    free(tampered);
    verify_case("verify_not_json", "not json");
    verify_case("verify_null", NULL);
    verify_case("verify_not_utf8", "{\"id\":\"\xff\"}");
    rc = provenance_verify(event, NULL, NULL);
    printf("rc verify_null_out %d\n", rc);

    /* Failure cases of provenance_sign. */
    const uint8_t *out = (const uint8_t *)OUTPUT;
    size_t out_len = strlen(OUTPUT);
    const uint8_t *prompt = (const uint8_t *)PROMPT;
    sign_case("sign_empty_output", signer, TEMPLATE, NULL, 0, NULL, NULL, 0, 1, 0);
    sign_case("sign_null_signer", NULL, TEMPLATE, out, out_len, NULL, NULL, 0, 1, 0);
    sign_case("sign_null_record", signer, NULL, out, out_len, NULL, NULL, 0, 1, 0);
    sign_case("sign_null_event_out", signer, TEMPLATE, out, out_len, NULL, NULL, 0, 0, 0);
    sign_case("sign_prompt_without_salt_out", signer, TEMPLATE, out, out_len, NULL, prompt, 3, 1,
              0);
    sign_case("sign_null_output_with_length", signer, TEMPLATE, NULL, 5, NULL, NULL, 0, 1, 0);
    sign_case("sign_template_with_output", signer,
              "{\"model\":{\"name\":\"m\"},\"output\":{}}", out, out_len, NULL, NULL, 0, 1, 0);
    sign_case("sign_template_not_json", signer, "model: m", out, out_len, NULL, NULL, 0, 1, 0);
    sign_case("sign_template_no_model", signer, "{}", out, out_len, NULL, NULL, 0, 1, 0);
    sign_case("sign_template_not_utf8", signer, "{\"model\":{\"name\":\"\xc3\x28\"}}", out,
              out_len, NULL, NULL, 0, 1, 0);
    char long_mime[PROVENANCE_MAX_MIME_BYTES + 2];
    memset(long_mime, 'a', sizeof long_mime - 1);
    long_mime[sizeof long_mime - 1] = '\0';
    sign_case("sign_mime_too_large", signer, TEMPLATE, out, out_len, long_mime, NULL, 0, 1, 0);
    /* The length is checked before anything is read, so `out` is never read past its end. */
    sign_case("sign_output_too_large", signer, TEMPLATE, out,
              (size_t)PROVENANCE_MAX_INPUT_BYTES + 1, NULL, NULL, 0, 1, 0);

    ProvenanceSigner *bad = provenance_signer_new("nsec1notakeyatall", &err);
    printf("rc signer_new_bad_key %d\n", bad == NULL && err != NULL ? 1 : 0);
    if (err != NULL && strstr(err, "notakeyatall") != NULL) {
        printf("rc signer_new_echoes_key 1\n");
    }
    provenance_string_free(err);
    err = NULL;
    bad = provenance_signer_new(NULL, NULL);
    printf("rc signer_new_null %d\n", bad == NULL ? 1 : 0);

    /* One signer, several threads at once. */
    enum { THREADS = 4 };
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        pthread_create(&threads[i], NULL, sign_in_thread, NULL);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        void *result = NULL;
        pthread_join(threads[i], &result);
        ok += result != NULL;
    }
    printf("threads %d\n", ok);

    provenance_string_free(event);
    provenance_string_free(salt);
    provenance_signer_free(signer);
    provenance_signer_free(NULL);
    provenance_string_free(NULL);
    return 0;
}
