#pragma once
#define PT_VERSION "0.1.0"
#define PT_SERVER_NAME "portico"
