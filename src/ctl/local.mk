# ctl module: chanctl
