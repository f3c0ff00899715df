# What the stock mmaction2 RGB configs made audio-visual share: the plugin,
# and online G-Blend with the paper's schedule (first estimate after 10
# epochs, then every 5). Each config wraps its own model and datasets: the
# wrappers take the stock config's values, which a base file cannot see.
custom_imports = dict(imports=['mmaction_gblend'], allow_failed_imports=False)
custom_hooks = [
    dict(
        type='GradientBlendingHook',
        mode='online',
        estimator='trajectory',
        warmup_epochs=10,
        super_epochs=5)
]
