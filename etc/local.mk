# Configuration example and manual pages (owned by the agent module).
# The example is installed as documentation, not as the live
# $(sysconfdir)/chand/chand.conf, so an upgrade never overwrites a
# configured system.
examplesdir = $(docdir)/examples
dist_examples_DATA = etc/chand.conf
dist_man_MANS += man/chand.8 man/chanctl.1 man/chand.conf.5
# The operator's guide (queues and messages), the admin protocol and the
# measured figures.
dist_doc_DATA += doc/ADMIN.md doc/ADMIN-PROTOCOL.md doc/PERFORMANCE.md
