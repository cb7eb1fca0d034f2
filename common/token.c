/*
 * token.c - reading an access token from a file (token.h).
 */
#include "token.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

static int token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
           c == '-';
}

int nf_token_check(const char *token, char *err, size_t errlen)
{
    size_t n = strlen(token);

    if (n < NF_TOKEN_MIN || n > NF_TOKEN_MAX) {
        snprintf(err, errlen,
                 "the token must have %d to %d characters, it "
                 "has %zu",
                 NF_TOKEN_MIN, NF_TOKEN_MAX, n);
        return NF_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!token_char(token[i])) {
            snprintf(err, errlen,
                     "the token may hold only A-Z a-z 0-9 . _ ~ - "
                     "(character %zu is not one)",
                     i + 1);
            return NF_EINVAL;
        }
    }
    return 0;
}

int nf_token_read(const char *path, char *token, char *err, size_t errlen)
{
    char line[NF_TOKEN_MAX + 8], why[160];
    FILE *f = fopen(path, "r");

    if (!f) {
        snprintf(err, errlen, "%s: cannot read the token file", path);
        return NF_EIO;
    }
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (nf_token_check(line, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: first line: %s", path, why);
        return NF_EINVAL;
    }
    strcpy(token, line);
    return 0;
}
