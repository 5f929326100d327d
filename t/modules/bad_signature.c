/*
 * Test-only module: the right ABI numbers but another build signature, as
 * a module compiled for a different struct layout (e.g. 32-bit) would carry.
 */
#include <portico/module.h>

#include <stdlib.h>

static void *must_not_run(pt_conf *cf) {
    (void)cf;
    abort();
}

static const pt_module bad_signature_module = {
    PT_ABI_MAJOR, PT_ABI_MINOR, "portico-abi:1:ilp32:c99", "bad_signature", "0.1", NULL,
    must_not_run, must_not_run, NULL, NULL, NULL, NULL,
};

PT_EXPORT const pt_module *pt_module_entry(const pt_host *host) {
    (void)host;
    return &bad_signature_module;
}
