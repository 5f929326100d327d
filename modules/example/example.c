/*
 * The smallest Portico module, in plain C99 against the public header only:
 * `example_text "hello";` in a location answers every request there with
 * that text. It exists to prove the ABI is C and to show the whole contract.
 */
#include <portico/module.h>

#include <string.h>

static const pt_host *H;
static const pt_module example_module;

typedef struct {
    pt_value *text; /* NULL: not set at this level */
} example_conf;

static void *create_loc_conf(pt_conf *cf) { return H->conf_alloc(cf, sizeof(example_conf)); }

static const char *merge_loc_conf(pt_conf *cf, void *parent, void *child) {
    (void)cf;
    example_conf *p = parent, *c = child;
    if (!c->text) c->text = p->text;
    return NULL;
}

static int example_handler(pt_request *r, void *loc_conf) {
    example_conf *conf = loc_conf;
    pt_str body;
    if (!conf || !conf->text || H->eval(r, conf->text, &body) != PT_OK) return 500;
    H->set_status(r, 200);
    H->resp_header_set(r, PT_STR("Content-Type"), PT_STR("text/plain"));
    H->resp_header_set(r, PT_STR("X-Example-Module"), PT_STR("1"));
    H->set_content_length(r, (int64_t)body.len);
    H->send_header(r);
    H->send_data(r, body.data, body.len);
    return H->finish(r);
}

static const char *set_example_text(pt_conf *cf, void *conf, const pt_str *args, size_t n) {
    example_conf *ec = conf;
    const char *err = NULL;
    (void)n;
    ec->text = H->conf_value(cf, args[1], &err);
    if (!ec->text) return err;
    H->conf_set_handler(cf, example_handler);
    return NULL;
}

static const pt_directive directives[] = {
    {"example_text", PT_CTX_LOCATION, PT_ARGS(1), PT_CONF_LOC, set_example_text},
    {NULL, 0, 0, PT_CONF_MAIN, NULL},
};

static const pt_module example_module = {
    PT_ABI_MAJOR, PT_ABI_MINOR, PT_ABI_SIGNATURE, "example", "1.0", directives,
    NULL, create_loc_conf, merge_loc_conf, NULL, NULL, NULL,
};

PT_EXPORT const pt_module *pt_module_entry(const pt_host *host) {
    H = host;
    return &example_module;
}
