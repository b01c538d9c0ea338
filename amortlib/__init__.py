"""amortlib: the helper library of the book *Amortized Inference*.

Modules, named after the ideas of the book:

- `amortlib.models`: generative models $p(\\text{latents}, y)$ with exact posteriors;
- `amortlib.networks`: inference networks $y \\mapsto q_\\phi(\\cdot \\mid y)$;
- `amortlib.losses`: `elbo_draws`, the one ELBO estimator of both parts, the qp loss (negative
  ELBO) built on it, and the pq loss (inference compilation);
- `amortlib.training`: `minimize`, the one compiled training loop, and `fit` on it;
- `amortlib.history`: `History`, what a run records, and the running mean of its losses;
- `amortlib.optimizers`: `Adam`, the loop's default optimiser, and the protocol of others;
- `amortlib.evaluation`: exact KL divergences to the posterior, both directions;
- `amortlib.plots`: the book's figure style;
- `amortlib.hierarchical`: models with global and local latents (linear, nonlinear, Bayesian
  decoder), with the contract of every model (``sample``, ``log_prob`` over ``{theta, z}``);
- `amortlib.families`: Part II's variational families: F-VI's free parameters, A-VI's inference
  functions (polynomial, constant, `networks.MLP`), and the variational posterior, an inference
  network over ``{theta, z}`` that `fit` trains;
- `amortlib.gap`: ELBO estimates with standard errors, the amortization gap, `fit_vi` (`fit` on
  a whole data set), convergence and the refinement diagnostic;
- `amortlib.gaussian`: Gaussian targets in information form and their exact mean-field optima;
- `amortlib.sequential`: the saw time series and Gaussian hidden Markov models;
- `amortlib.calibration`: exact and simulated coverage and SBC ranks for a scalar latent;
- `amortlib.linear_vae`: the linear VAE (probabilistic PCA) learned jointly with its encoder,
  solved exactly;
- `amortlib.sets`: models with data sets of any size and the DeepSets summary network;
- `amortlib.particles`: the IWAE bound, reweighted wake-sleep and VIMCO, analysed exactly;
- `amortlib.refinement`: per-observation ELBO steps from a network's output, the best Gaussian;
- `amortlib.importance`: importance weights, chi-square, effective sample size and Pareto k.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, CPU feature notes) is noise for a reader.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from amortlib import (  # noqa: E402
    calibration,
    families,
    gap,
    gaussian,
    hierarchical,
    importance,
    linear_vae,
    particles,
    refinement,
    sequential,
    sets,
)
from amortlib.evaluation import (  # noqa: E402
    forward_kl,
    gradient_samples,
    importance_resample,
    kl_divergence,
    reverse_kl,
    total_variation,
)
from amortlib.history import History, running_mean  # noqa: E402
from amortlib.losses import discrete_configurations, elbo_draws, pq_loss, qp_loss  # noqa: E402
from amortlib.models import (  # noqa: E402
    GaussianMixtureExplicit,
    GaussianMixturePrior,
    GaussianUnknownMean,
    LatentVariableModel,
    LinearGaussianParams,
    OpenUniverseMixture,
)
from amortlib.networks import (  # noqa: E402
    MLP,
    CategoricalGaussian,
    LinearGaussian,
    MLPGaussian,
    OpenUniverseNetwork,
)
from amortlib.optimizers import Adam  # noqa: E402
from amortlib.training import fit, minimize  # noqa: E402

#: The release: the one place that sets it (pyproject.toml reads it; tools/release.py copies it
#: into _config.yml and the notebooks' install cell). See "Releases" in README.md.
__version__ = "0.2.0"

__all__ = [
    "Adam",
    "CategoricalGaussian",
    "GaussianMixtureExplicit",
    "GaussianMixturePrior",
    "GaussianUnknownMean",
    "History",
    "LatentVariableModel",
    "LinearGaussian",
    "LinearGaussianParams",
    "MLP",
    "MLPGaussian",
    "OpenUniverseMixture",
    "OpenUniverseNetwork",
    "calibration",
    "discrete_configurations",
    "elbo_draws",
    "families",
    "fit",
    "forward_kl",
    "gap",
    "gaussian",
    "gradient_samples",
    "hierarchical",
    "importance",
    "importance_resample",
    "kl_divergence",
    "linear_vae",
    "minimize",
    "particles",
    "pq_loss",
    "qp_loss",
    "refinement",
    "reverse_kl",
    "running_mean",
    "sequential",
    "sets",
    "total_variation",
]
