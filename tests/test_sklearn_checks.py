"""scikit-learn's own estimator suite, on the configurations users reach for."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_convae import ConvAutoEncoderTransformer

# Small epoch budgets keep the suite fast; every other setting is the default.
CONFIGURATIONS = [
    ConvAutoEncoderTransformer(max_epochs=3),
    ConvAutoEncoderTransformer(n_components=1, max_epochs=3),
    ConvAutoEncoderTransformer(loss="mse", noise_factor=0.2, max_epochs=3),
    ConvAutoEncoderTransformer(architecture="dense", max_epochs=3),
]


@parametrize_with_checks(CONFIGURATIONS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
