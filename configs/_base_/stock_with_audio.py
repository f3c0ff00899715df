# What the stock mmaction2 RGB configs made audio-visual share: the plugin,
# and online G-Blend with the paper's schedule (first estimate after 10
# epochs, then every 5). Each config wraps its own model and datasets: the
# wrappers take the stock config's values, which a base file cannot see.
_base_ = ['./gblend_online.py']

custom_imports = dict(imports=['mmaction_gblend'], allow_failed_imports=False)
