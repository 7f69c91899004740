/* Test and benchmark support for the TLS layer: a throw-away PKI made by
 * tests/pki/mkpki.sh, and keystore material built straight from its PEM
 * files (no keystore file needed). */
#ifndef CHAND_TESTS_TLS_PEM_H
#define CHAND_TESTS_TLS_PEM_H

#include "chand/keystore.h"

/* Runs mkpki.sh into a fresh temp dir; returns the malloc'd path or NULL. */
char *tp_pki_make(const char *srcdir);
void tp_rmtree(const char *dir);

struct ks_material *tp_material_new(void);
/* Leaf (plus chain, if the file holds more than one certificate, and
 * extra chain files) with its key. Files relative to dir. 0 or -1. */
int tp_add_personal(struct ks_material *m, const char *dir, const char *label,
                    const char *certfile, const char *keyfile, const char *chainfile);
/* Every certificate of a PEM file becomes a trusted entry. */
int tp_add_trusted(struct ks_material *m, const char *dir, const char *file);
int tp_add_crl(struct ks_material *m, const char *dir, const char *file);
void tp_material_free(struct ks_material *m);

#endif
