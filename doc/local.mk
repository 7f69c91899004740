# Documentation shipped with the distribution (installed under docdir).
# Module local.mk files add the documents they own (PROTOCOL.md, CHANNELS.md).
dist_doc_DATA += doc/SSLPEER.md doc/KEYSTORE.md doc/TLS.md doc/STORAGE.md
# Modules, threads and locks, for people who read or change the code.
dist_doc_DATA += doc/ARCHITECTURE.md
