/*
 * Test-only module: a well-formed descriptor that claims the next major ABI
 * version and another build signature, as a module built against a future
 * header would. The loader must refuse it before calling any of its hooks;
 * the hooks here abort so a loader that forgets a check fails loudly.
 */
#include <portico/module.h>

#include <stdlib.h>

static void *must_not_run(pt_conf *cf) {
    (void)cf;
    abort();
}

static const pt_module bad_abi_module = {
    PT_ABI_MAJOR + 1, 0, "portico-abi:2:lp64:c99", "bad_abi", "0.1", NULL,
    must_not_run, must_not_run, NULL, NULL, NULL, NULL,
};

PT_EXPORT const pt_module *pt_module_entry(const pt_host *host) {
    (void)host;
    return &bad_abi_module;
}
