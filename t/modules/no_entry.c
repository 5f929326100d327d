/*
 * Test-only module: a valid shared object that exports no pt_module_entry,
 * as a library named by mistake in load_module would be.
 */
#include <portico/module.h>

PT_EXPORT int not_a_portico_module(void) { return 42; }
