/*
 * token.h - access tokens: the server's stream and viewer tokens
 * (server/access.h) and the clients that present them. A token is kept in
 * a file, first line, never on a command line (where `ps` shows it).
 */
#ifndef NF_TOKEN_H
#define NF_TOKEN_H

#include <stddef.h>

/* Tokens: 16 to 128 characters of A-Z a-z 0-9 . _ ~ - (safe in a
 * subprotocol name and in a URL without escaping). */
#define NF_TOKEN_MIN 16
#define NF_TOKEN_MAX 128

/* A client offers the stream token as this subprotocol plus the token. */
#define NF_TOKEN_SUBPROTOCOL_PREFIX "nextframe.token."

/* Checks a token's length and characters: 0, or NF_EINVAL and a message
 * in err. */
int nf_token_check(const char *token, char *err, size_t errlen);

/*
 * Reads the first line of path into token (NF_TOKEN_MAX + 1 bytes) and
 * checks it. Returns 0, or NF_EIO / NF_EINVAL after writing a message that
 * names the file into err.
 */
int nf_token_read(const char *path, char *token, char *err, size_t errlen);

#endif /* NF_TOKEN_H */
