"""The core: what a net is (`spec`), its module (`build`), its analytic count (`complexity`), named nets (`zoo`)."""
