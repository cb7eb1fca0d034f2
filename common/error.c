/* error.c - nf_strerror() and nf_errname() generated from NF_ERRNO_MAP. */
#include "error.h"

const char *nf_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define NF_ERR_MSG(name, val, msg)                                             \
    case NF_E##name:                                                           \
        return msg;
        NF_ERRNO_MAP(NF_ERR_MSG)
#undef NF_ERR_MSG
    default:
        return "unknown error";
    }
}

const char *nf_errname(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define NF_ERR_NAME(name, val, msg)                                            \
    case NF_E##name:                                                           \
        return #name;
        NF_ERRNO_MAP(NF_ERR_NAME)
#undef NF_ERR_NAME
    default:
        return "UNKNOWN";
    }
}
