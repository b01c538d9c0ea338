"""The bad-input table: every row is a bad call of a public function, the error type it must
raise and a pattern the message must contain (the argument's name). None may return a number
silently or fail with a raw TensorFlow or NumPy error.

The rows follow the audit's categories: wrong types, sizes and seeds; NaN, infinite, complex
and empty data; scales that are not positive; a network that does not fit the model; things
that cannot be trained; options that do not apply to the chosen loss.
"""

import numpy as np
import pytest
import tensorflow as tf

import amortlib as am
from amortlib import (
    calibration,
    evaluation,
    families,
    gap,
    gaussian,
    hierarchical,
    losses,
    models,
    networks,
    sequential,
)

NAN, INF = float("nan"), float("inf")
GUM = models.GaussianUnknownMean
MIX = models.GaussianMixtureExplicit


def fit(*args, **kwargs):
    return am.fit(*args, progress=False, num_steps=2, **kwargs)


def minimize(*args, **kwargs):
    return am.minimize(*args, progress=False, **kwargs)


W = tf.Variable(1.0)
LIN = hierarchical.LinearModel
SAW = sequential.SawTimeSeries
HMM = sequential.GaussianHMM
X3 = np.array([0.5, -1.0, 2.0], np.float32)


LINEAR = LIN()


def posterior(model=LINEAR, n=3):
    return families.VariationalPosterior(model, families.Factorized(n))

ROWS = [
    # --- models: parameters, sizes, seeds, observations
    ("GaussianUnknownMean sigma0 < 0", lambda: GUM(sigma0=-1.0), ValueError, "sigma0"),
    ("GaussianUnknownMean sigma nan", lambda: GUM(sigma=NAN), ValueError, "sigma"),
    ("GaussianUnknownMean mu0 inf", lambda: GUM(mu0=INF), ValueError, "mu0"),
    ("GaussianUnknownMean mu0 str", lambda: GUM(mu0="a"), ValueError, "mu0"),
    ("sample batch_size 0", lambda: GUM().sample(0, seed=0), ValueError, "batch_size"),
    ("sample batch_size 2.5", lambda: GUM().sample(2.5, seed=0), ValueError, "batch_size"),
    ("sample seed -1", lambda: GUM().sample(3, seed=-1), ValueError, "seed"),
    ("sample seed 2**31", lambda: GUM().sample(3, seed=2**31), ValueError, "seed"),
    ("sample seed str", lambda: GUM().sample(3, seed="0"), ValueError, "seed"),
    ("log_prob y nan", lambda: GUM().log_prob(0.0, [NAN]), ValueError, "y"),
    ("log_prob y complex", lambda: GUM().log_prob(0.0, [1j]), ValueError, "y"),
    ("posterior y nan", lambda: GUM().posterior([NAN]), ValueError, "y"),
    ("posterior y 2-D", lambda: GUM().posterior(np.zeros((2, 2))), ValueError, "y"),
    ("posterior y complex", lambda: GUM().posterior(np.ones(2) + 1j), ValueError, "y"),
    ("mixture probs sum", lambda: MIX(probs=(0.5, 0.6)), ValueError, "probs"),
    ("mixture probs < 0", lambda: MIX(probs=(1.5, -0.5)), ValueError, "probs"),
    ("mixture scales 0", lambda: MIX(scales=(1.0, 0.0)), ValueError, "scales"),
    ("mixture locs length", lambda: MIX(locs=(1.0, 2.0, 3.0)), ValueError, "locs"),
    ("open universe k_probs", lambda: models.OpenUniverseMixture(k_probs=(1.0,)), ValueError,
     "k_probs"),
    ("open universe k_posterior nan", lambda: models.OpenUniverseMixture().k_posterior([NAN]),
     ValueError, "y"),
    # --- networks
    ("LinearGaussian c 0", lambda: networks.LinearGaussian(c=0.0), ValueError, "c"),
    ("LinearGaussian a nan", lambda: networks.LinearGaussian(a=NAN), ValueError, "a"),
    ("LinearGaussian call nan", lambda: networks.LinearGaussian()([NAN]), ValueError, "y"),
    ("MLP input_size 0", lambda: networks.MLP(0, (4,), 1), ValueError, "input_size"),
    ("MLP hidden str", lambda: networks.MLP(1, "4", 1), ValueError, "hidden"),
    ("MLP hidden 0", lambda: networks.MLP(1, (0,), 1), ValueError, "hidden"),
    ("MLP seed None", lambda: networks.MLP(1, (4,), 1, seed=None), ValueError, "seed"),
    ("MLP activation sigmoid", lambda: networks.MLP(1, (4,), 1, activation="sigmoid"),
     ValueError, "activation"),
    ("MLP initialiser normal", lambda: networks.MLP(1, (4,), 1, initialiser="normal"),
     ValueError, "initialiser"),
    ("MLP zero_output 1", lambda: networks.MLP(1, (4,), 1, zero_output=1), TypeError,
     "zero_output"),
    ("MLPGaussian input_scale 0", lambda: networks.MLPGaussian(input_scale=0.0), ValueError,
     "input_scale"),
    ("CategoricalGaussian num_components 0", lambda: networks.CategoricalGaussian(0),
     ValueError, "num_components"),
    # --- losses
    ("qp_loss seed None", lambda: losses.qp_loss(GUM(), networks.LinearGaussian(), None, [0.0],
                                                 seed=None), ValueError, "seed"),
    ("qp_loss empty", lambda: losses.qp_loss(GUM(), networks.LinearGaussian(), None, [],
                                             seed=0), ValueError, "observations"),
    ("pq_loss empty", lambda: losses.pq_loss(GUM(), networks.LinearGaussian(), [], []),
     ValueError, "observations"),
    ("pq_loss latents None", lambda: losses.pq_loss(GUM(), networks.LinearGaussian(), None,
                                                    [0.0]), ValueError, "latents"),
    ("qp_loss sample_size 0", lambda: losses.qp_loss(GUM(), networks.LinearGaussian(), None,
                                                     [0.0], seed=0, sample_size=0),
     ValueError, "sample_size"),
    ("qp_loss estimator", lambda: losses.qp_loss(GUM(), networks.LinearGaussian(), None, [0.0],
                                                 seed=0, estimator="gumbel"),
     ValueError, "estimator"),
    ("qp_loss baseline str", lambda: losses.qp_loss(
        MIX(), networks.CategoricalGaussian(), None, [0.0], seed=0, estimator="reinforce",
        sample_size=2, baseline="yes"), TypeError, "baseline"),
    ("qp_loss 3 components for 2", lambda: losses.qp_loss(
        MIX(), networks.CategoricalGaussian(3), None, [0.0], seed=0, estimator="enumerate"),
     ValueError, "q_net .*CategoricalGaussian.* 3 components .*model"),
    ("pq_loss network without k", lambda: losses.pq_loss(
        models.OpenUniverseMixture(), networks.CategoricalGaussian(2),
        *models.OpenUniverseMixture().sample(4, seed=0)),
     ValueError, r"q_net .*CategoricalGaussian.*model .*OpenUniverseMixture"),
    ("qp_loss y nan", lambda: losses.qp_loss(GUM(), networks.LinearGaussian(), None, [NAN],
                                             seed=0), ValueError, "y"),
    ("qp_loss exact_entropy str", lambda: losses.qp_loss(
        GUM(), networks.LinearGaussian(), None, [0.0], seed=0, exact_entropy="yes"),
     TypeError, "exact_entropy"),
    ("qp_loss exact_entropy enumerate", lambda: losses.qp_loss(
        MIX(), networks.CategoricalGaussian(), None, [0.0], seed=0, estimator="enumerate",
        exact_entropy=True), ValueError, "exact_entropy"),
    ("elbo_draws empty", lambda: losses.elbo_draws(GUM(), networks.LinearGaussian(), [],
                                                   seed=0), ValueError, "observations"),
    ("elbo_draws sample_size 0", lambda: losses.elbo_draws(
        GUM(), networks.LinearGaussian(), [0.0], seed=0, sample_size=0), ValueError,
     "sample_size"),
    # --- evaluation
    ("reverse_kl 3 components for 2", lambda: evaluation.reverse_kl(
        MIX(), networks.CategoricalGaussian(3), [0.0]), ValueError, "components"),
    ("forward_kl y nan", lambda: evaluation.forward_kl(GUM(), networks.LinearGaussian(),
                                                       [NAN]), ValueError, "y"),
    # --- training: fit
    ("fit loss name", lambda: fit(GUM(), networks.LinearGaussian(), "kl"), ValueError, "loss"),
    ("fit loss type", lambda: fit(GUM(), networks.LinearGaussian(), 3), TypeError, "loss"),
    ("fit q_net not a module", lambda: fit(GUM(), lambda y: None, "qp"), TypeError, "q_net"),
    ("fit q_net untrainable", lambda: fit(GUM(), tf.Module(), "qp"), ValueError, "q_net"),
    ("fit pq with sample_size", lambda: fit(GUM(), networks.LinearGaussian(), "pq",
                                            sample_size=3), ValueError, "sample_size"),
    ("fit unknown option", lambda: fit(GUM(), networks.LinearGaussian(), "qp", samples=3),
     ValueError, "samples"),
    ("fit batch_size 0", lambda: fit(GUM(), networks.LinearGaussian(), "qp", batch_size=0),
     ValueError, "batch_size"),
    ("fit learning_rate nan", lambda: fit(GUM(), networks.LinearGaussian(), "qp",
                                          learning_rate=NAN), ValueError, "learning_rate"),
    ("fit seed None", lambda: fit(GUM(), networks.LinearGaussian(), "qp", seed=None),
     ValueError, "seed"),
    ("fit anneal str", lambda: fit(GUM(), networks.LinearGaussian(), "qp", anneal="yes"),
     TypeError, "anneal"),
    ("fit progress int", lambda: am.fit(GUM(), networks.LinearGaussian(), "qp", num_steps=2,
                                        progress=2), TypeError, "progress"),
    ("fit data empty", lambda: fit(GUM(), networks.LinearGaussian(), "qp", data=[]),
     ValueError, "data"),
    ("fit data nan", lambda: fit(GUM(), networks.LinearGaussian(), "qp", data=[0.0, NAN]),
     ValueError, "data"),
    ("fit data complex", lambda: fit(GUM(), networks.LinearGaussian(), "qp", data=[1j, 2.0]),
     ValueError, "data"),
    ("fit data pair rows", lambda: fit(GUM(), networks.LinearGaussian(), "pq",
                                       data=(np.zeros(2), np.zeros(3))), ValueError, "latents"),
    ("fit data pair as a list", lambda: fit(GUM(), networks.LinearGaussian(), "qp",
                                            data=[np.zeros(3), np.zeros(3)]),
     ValueError, "tuple"),
    ("fit pq observations only", lambda: fit(GUM(), networks.LinearGaussian(), "pq",
                                             data=np.zeros(3)), ValueError, "data"),
    ("fit trace_fn not callable", lambda: fit(GUM(), networks.LinearGaussian(), "qp",
                                              trace_fn=3), TypeError, "trace_fn"),
    ("fit train_model plain model", lambda: fit(GUM(), networks.LinearGaussian(), "qp",
                                                train_model=True), TypeError, "train_model"),
    ("fit 3 components for 2", lambda: fit(MIX(), networks.CategoricalGaussian(3), "qp",
                                           estimator="enumerate"), ValueError, "components"),
    ("fit open universe with CategoricalGaussian", lambda: fit(
        models.OpenUniverseMixture(), networks.CategoricalGaussian(2), "pq"),
     ValueError, "latents"),
    # --- training: minimize
    ("minimize constant tensor", lambda: minimize(lambda s: W, [tf.constant(1.0)], num_steps=1,
                                                  learning_rate=0.1), TypeError, "variables"),
    ("minimize no variables", lambda: minimize(lambda s: W, [], num_steps=1,
                                               learning_rate=0.1), ValueError, "variables"),
    ("minimize non-trainable", lambda: minimize(
        lambda s: W, [tf.Variable(1.0, trainable=False)], num_steps=1, learning_rate=0.1),
     TypeError, "variables"),
    ("minimize loss_fn not callable", lambda: minimize(3.0, [W], num_steps=1,
                                                       learning_rate=0.1),
     TypeError, "loss_fn"),
    ("minimize num_steps 0", lambda: minimize(lambda s: W, [W], num_steps=0, learning_rate=0.1),
     ValueError, "num_steps"),
    ("minimize no learning_rate", lambda: minimize(lambda s: W, [W], num_steps=1), ValueError,
     "learning_rate"),
    ("minimize learning_rate < 0", lambda: minimize(lambda s: W, [W], num_steps=1,
                                                    learning_rate=-1.0),
     ValueError, "learning_rate"),
    ("minimize loss not scalar", lambda: minimize(lambda s: W * tf.ones(2), [W], num_steps=1,
                                                  learning_rate=0.1), ValueError, "scalar"),
    ("minimize divergence_factor 1", lambda: minimize(lambda s: W, [W], num_steps=1,
                                                      learning_rate=0.1, divergence_factor=1),
     ValueError, "divergence_factor"),
    ("Adam learning_rate 0", lambda: am.Adam(0.0), ValueError, "learning_rate"),
    ("running_mean window 0", lambda: am.running_mean([1.0], window=0), ValueError, "window"),
    ("running_mean 2-D", lambda: am.running_mean(np.ones((2, 2))), ValueError, "values"),
    ("History.seconds_per_step by hand", lambda: am.History(
        np.ones(2), {}, np.ones(2)).seconds_per_step, ValueError, "chunk times"),
    # --- gap
    ("steps_to_converge empty", lambda: gap.steps_to_converge([], 1.0), ValueError, "loss"),
    ("steps_to_converge target 0", lambda: gap.steps_to_converge([1.0], 0.0), ValueError,
     "target"),
    ("steps_to_converge elapsed shape", lambda: gap.steps_to_converge([1.0, 2.0], 1.0,
                                                                      elapsed=[1.0]),
     ValueError, "elapsed"),
    # --- seeds: one policy, None refused with a ValueError naming the argument
    ("model sample seed None", lambda: GUM().sample(3, seed=None), ValueError, "seed"),
    ("LinearModel sample seed None", lambda: LIN().sample(3), ValueError, "seed"),
    ("NonlinearModel sample seed None", lambda: hierarchical.NonlinearModel().sample(3),
     ValueError, "seed"),
    ("BayesianDecoder sample seed None", lambda: hierarchical.BayesianDecoder().sample(3),
     ValueError, "seed"),
    ("SawTimeSeries sample seed None", lambda: SAW().sample(3, theta=0.0), ValueError, "seed"),
    ("SawTimeSeries paper_data seed None", lambda: SAW().paper_data(3), ValueError, "seed"),
    ("GaussianHMM sample seed None", lambda: HMM().sample(3), ValueError, "seed"),
    ("MLPGaussian seed None", lambda: networks.MLPGaussian(seed=None), ValueError, "seed"),
    ("MLPGaussian seed 2**31", lambda: networks.MLPGaussian(seed=2**31), ValueError, "seed"),
    ("CategoricalGaussian seed 2**31",
     lambda: networks.CategoricalGaussian(seed=2**31), ValueError, r"seed .*2147483648"),
    ("CategoricalGaussian seed str", lambda: networks.CategoricalGaussian(seed="1"), ValueError,
     "seed"),
    ("OpenUniverseNetwork seed -1", lambda: networks.OpenUniverseNetwork(seed=-1), ValueError,
     "seed"),
    ("MLPFunction seed None", lambda: families.MLPFunction(4, seed=None), ValueError, "seed"),
    ("gap.elbo seed None", lambda: gap.elbo(LINEAR, posterior(), X3, seed=None), ValueError,
     "seed"),
    ("elbo_difference seed None",
     lambda: gap.elbo_difference(LINEAR, posterior(), posterior(), X3, seed=None), ValueError,
     "seed"),
    ("gradient_moments seed None",
     lambda: gap.gradient_moments(LINEAR, posterior(), X3, seed=None), ValueError, "seed"),
    ("fit_vi seed None", lambda: gap.fit_vi(LINEAR, posterior(), X3, num_steps=2,
                                            learning_rate=0.1, seed=None), ValueError, "seed"),
    ("elbo_draws seed None", lambda: losses.elbo_draws(LINEAR, posterior(), X3, seed=None),
     ValueError, "seed"),
    ("empirical_coverage seed None",
     lambda: calibration.empirical_coverage(GUM(), networks.LinearGaussian(), 0.9, 10,
                                            seed=None), ValueError, "seed"),
    # --- hierarchical models
    ("LinearModel tau 0", lambda: LIN(tau=0.0), ValueError, "tau"),
    ("LinearModel sigma nan", lambda: LIN(sigma=NAN), ValueError, "sigma"),
    ("LinearModel num_points 0", lambda: LIN().sample(0, seed=0), ValueError, "num_points"),
    ("NonlinearModel noise", lambda: hierarchical.NonlinearModel(noise="gauss"), ValueError,
     "noise"),
    ("BayesianDecoder latent_dim 0", lambda: hierarchical.BayesianDecoder(latent_dim=0),
     ValueError, "latent_dim"),
    ("LinearModel optimum x nan", lambda: LIN().fvi_optimum([0.0, NAN]), ValueError, "x"),
    ("LinearModel optimum x complex", lambda: LIN().fvi_optimum([1j, 0.0]), ValueError, "x"),
    ("LinearModel optimum x empty", lambda: LIN().fvi_optimum([]), ValueError, "x"),
    # --- sequential models
    ("SawTimeSeries alpha str", lambda: SAW(alpha="a"), ValueError, "alpha"),
    ("SawTimeSeries precision x short", lambda: SAW().precision([1.0]), ValueError, "x"),
    ("SawTimeSeries precision x nan", lambda: SAW().precision([1.0, NAN]), ValueError, "x"),
    ("SawTimeSeries precision x complex", lambda: SAW().precision([1.0, 1j]), ValueError, "x"),
    ("SawTimeSeries features inputs", lambda: SAW().features([1.0, 2.0], "y"), ValueError,
     "inputs"),
    ("GaussianHMM observation_sd 0", lambda: HMM(observation_sd=0.0), ValueError,
     "observation_sd"),
    ("GaussianHMM optimal_elbo x 2-D", lambda: HMM().optimal_elbo(np.zeros((2, 2))),
     ValueError, "x"),
    ("GaussianHMM log_prob latents not a dict", lambda: HMM().log_prob(np.zeros(3), np.zeros(3)),
     ValueError, "latents"),
    ("GaussianHMM log_prob x nan", lambda: HMM().log_prob({"z": np.zeros(2)}, [1.0, NAN]),
     ValueError, "x"),
    # --- Gaussian algebra: precisions square, symmetric, finite, positive definite
    ("mean_field_optimum precision not square",
     lambda: gaussian.mean_field_optimum(np.ones((2, 3)), np.ones(2)), ValueError, "precision"),
    ("mean_field_optimum precision nan",
     lambda: gaussian.mean_field_optimum([[1.0, NAN], [NAN, 1.0]], np.ones(2)), ValueError,
     "precision"),
    ("mean_field_optimum precision not symmetric",
     lambda: gaussian.mean_field_optimum([[2.0, 1.0], [0.0, 2.0]], np.ones(2)), ValueError,
     "precision"),
    ("mean_field_kl precision indefinite",
     lambda: gaussian.mean_field_kl(gaussian.paper_hmm_matrix(3), np.ones(3),
                                    gaussian.MeanField(np.ones(3), np.ones(3))),
     ValueError, "precision"),
    ("mean_field_kl q.means nan",
     lambda: gaussian.mean_field_kl(np.eye(2), np.ones(2),
                                    gaussian.MeanField([0.0, NAN], np.ones(2))),
     ValueError, "q.means"),
    ("mean_field_kl q.variances inf",
     lambda: gaussian.mean_field_kl(np.eye(2), np.ones(2),
                                    gaussian.MeanField(np.ones(2), [1.0, INF])),
     ValueError, "q.variances"),
    ("mean_field_elbo precision not square", lambda: gaussian.mean_field_elbo(0.0, np.ones(3)),
     ValueError, "precision"),
    ("mean_field_elbo precision indefinite",
     lambda: gaussian.mean_field_elbo(0.0, gaussian.paper_hmm_matrix(3)), ValueError,
     "precision"),
    ("mean_field_elbo precision inf", lambda: gaussian.mean_field_elbo(0.0, [[INF]]),
     ValueError, "precision"),
    ("mean_field_elbo variances nan", lambda: gaussian.mean_field_elbo(0.0, np.eye(2),
                                                                       [1.0, NAN]),
     ValueError, "variances"),
    ("mean_field_elbo log_joint_at_means nan", lambda: gaussian.mean_field_elbo(NAN, np.eye(1)),
     ValueError, "log_joint_at_means"),
    ("constrained optimum variance_groups float",
     lambda: gaussian.constrained_mean_field_optimum(np.eye(2), np.ones(2), np.ones((2, 1)),
                                                     [0.5, 1.0]),
     ValueError, "variance_groups"),
    ("tridiagonal size 0", lambda: gaussian.tridiagonal(0, 1.0, 0.0), ValueError, "size"),
    # --- families
    ("Polynomial degree -1", lambda: families.Polynomial(-1), ValueError, "degree"),
    ("Polynomial local_dim 0", lambda: families.Polynomial(1, local_dim=0), ValueError,
     "local_dim"),
    ("MLPFunction width 0", lambda: families.MLPFunction(0), ValueError, "width"),
    ("Factorized scale 0", lambda: families.Factorized(3, scale=0.0), ValueError, "scale"),
    ("Factorized loc shape", lambda: families.Factorized(3, loc=np.zeros(2)), ValueError, "loc"),
    ("Factorized x rows", lambda: families.Factorized(3)(np.zeros(4)), ValueError, "x"),
    ("Amortized inputs", lambda: families.Amortized(families.Constant(), inputs="y"),
     ValueError, "inputs"),
    ("Amortized inference_function", lambda: families.Amortized(lambda u: u), ValueError,
     "inference_function"),
    ("Amortized x complex", lambda: families.Amortized(families.Constant())([1j]), ValueError,
     "x"),
    ("VariationalPosterior model", lambda: families.VariationalPosterior(
        "model", families.Factorized(3)), ValueError, "model"),
    ("VariationalPosterior theta_scale nan", lambda: families.VariationalPosterior(
        LIN(), families.Factorized(3), theta_scale=NAN), ValueError, "theta_scale"),
    ("set_theta theta_loc shape", lambda: posterior().set_theta(np.zeros(3)), ValueError,
     "theta_loc"),
    # --- gap
    ("gap.elbo sample_size 1", lambda: gap.elbo(LINEAR, posterior(), X3, sample_size=1),
     ValueError, "sample_size"),
    ("gap.elbo x nan", lambda: gap.elbo(LINEAR, posterior(), [0.0, NAN, 1.0]), ValueError, "x"),
    ("gap.elbo x empty", lambda: gap.elbo(LINEAR, posterior(), []), ValueError, "x"),
    ("gap.elbo posterior of another model", lambda: gap.elbo(LIN(), posterior(LIN()), X3),
     ValueError, "posterior"),
    ("gap.elbo chunk_size 0", lambda: gap.elbo(LINEAR, posterior(), X3, chunk_size=0),
     ValueError, "chunk_size"),
    ("exact_elbo without gaussian_elbo",
     lambda: gap.exact_elbo(hierarchical.BayesianDecoder(),
                            posterior(hierarchical.BayesianDecoder()), np.zeros((3, 64))),
     ValueError, "model"),
    ("amortization_gap sample_size 0",
     lambda: gap.amortization_gap(LINEAR, posterior(), posterior(), X3, sample_size=0),
     ValueError, "sample_size"),
    ("fit_vi num_steps 0", lambda: gap.fit_vi(LINEAR, posterior(), X3, num_steps=0,
                                              learning_rate=0.1), ValueError, "num_steps"),
    ("fit_vi x complex", lambda: gap.fit_vi(LINEAR, posterior(), X3 + 1j,
                                            num_steps=2, learning_rate=0.1), ValueError, "x"),
    ("fit_vi posterior a family", lambda: gap.fit_vi(LINEAR, families.Factorized(3), X3,
                                                     num_steps=2, learning_rate=0.1),
     ValueError, "posterior"),
    ("fit hierarchical batch_size below N", lambda: am.fit(
        LINEAR, posterior(), "qp", data=X3, batch_size=2, num_steps=2), ValueError,
     "batch_size"),
    ("fit hierarchical without data", lambda: am.fit(
        LINEAR, posterior(), "qp", batch_size=3, num_steps=2), ValueError, "data"),
    ("LinearModel log_prob latents tuple", lambda: LINEAR.log_prob(
        (np.zeros((1, 1)), np.zeros((1, 3, 1))), X3), ValueError, "latents"),
    ("fvi_refinement posterior", lambda: gap.fvi_refinement(LIN(), "q", X3), ValueError,
     "posterior"),
    ("gradient_moments sample_size 1",
     lambda: gap.gradient_moments(LINEAR, posterior(), X3, sample_size=1), ValueError,
     "sample_size"),
    ("traced_elbo without expected_log_joint",
     lambda: gap.traced_elbo(hierarchical.NonlinearModel(),
                             posterior(hierarchical.NonlinearModel()), X3),
     ValueError, "model"),
    # --- calibration
    ("interval_mass level 1", lambda: calibration.interval_mass(
        GUM(), networks.LinearGaussian(), [0.0], 1.0), ValueError, "level"),
    ("interval_mass y nan", lambda: calibration.interval_mass(
        GUM(), networks.LinearGaussian(), [NAN], 0.9), ValueError, "y"),
    ("expected_coverage num_points 1", lambda: calibration.expected_coverage(
        GUM(), networks.LinearGaussian(), 0.9, num_points=1), ValueError, "num_points"),
    ("pit_cdf u > 1", lambda: calibration.pit_cdf(GUM(), networks.LinearGaussian(), [1.5]),
     ValueError, "u"),
    ("rank_distribution num_draws 0", lambda: calibration.rank_distribution(
        GUM(), networks.LinearGaussian(), 0), ValueError, "num_draws"),
    ("sbc_ranks num_sims 0", lambda: calibration.sbc_ranks(
        GUM(), networks.LinearGaussian(), 0, 10), ValueError, "num_sims"),
    ("empirical_coverage num_sims 0", lambda: calibration.empirical_coverage(
        GUM(), networks.LinearGaussian(), 0.9, 0), ValueError, "num_sims"),
]


@pytest.mark.parametrize("make, error, pattern", [row[1:] for row in ROWS],
                         ids=[row[0] for row in ROWS])
def test_bad_input_is_a_clear_error_naming_the_argument(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_the_table_is_large():
    assert len(ROWS) >= 70 and len({row[0] for row in ROWS}) == len(ROWS)
