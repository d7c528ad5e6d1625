"""Reference methods and baselines, one module each; every module registers itself with
`@register_method`. Installed as `ddbench.methods`."""
