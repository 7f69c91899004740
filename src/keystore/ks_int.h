/* Keystore internals shared by the files of src/keystore/ (not a
 * contract; the module's API is chand/keystore.h and chand/keystore_file.h). */
#ifndef CHAND_KS_INT_H
#define CHAND_KS_INT_H

#include "chand/keystore.h"
#include "chand/keystore_file.h"

#define KS_SCHEMA_VERSION 1
#define KS_FILE_MAX (4u * 1024 * 1024)

#endif
