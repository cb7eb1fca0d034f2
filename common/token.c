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

int nf_token_read(const char *path, char *token, char *err, size_t errlen)
{
    char line[NF_TOKEN_MAX + 8];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f) {
        snprintf(err, errlen, "%s: cannot read the token file", path);
        return NF_EIO;
    }
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (n < NF_TOKEN_MIN || n > NF_TOKEN_MAX) {
        snprintf(err, errlen,
                 "%s: the token (first line) must have %d to %d "
                 "characters, it has %zu",
                 path, NF_TOKEN_MIN, NF_TOKEN_MAX, n);
        return NF_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!token_char(line[i])) {
            snprintf(err, errlen,
                     "%s: the token may hold only A-Z a-z 0-9 . _ ~ - "
                     "(character %zu is not one)",
                     path, i + 1);
            return NF_EINVAL;
        }
    }
    memcpy(token, line, n + 1);
    return 0;
}
