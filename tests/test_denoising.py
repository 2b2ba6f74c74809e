"""A model trained with noise_factor cleans noisy digits better than one without."""

import numpy as np
from sklearn.model_selection import train_test_split

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.plotting import add_noise
from tests.conftest import FAST


def test_denoising_model_reconstructs_noisy_digits_closer_to_the_clean_ones(digits):
    X_train, X_test = train_test_split(digits[0], random_state=0)
    params = dict(n_components=16, **{**FAST, "max_epochs": 15})
    plain = ConvAutoEncoderTransformer(**params).fit(X_train)
    denoiser = ConvAutoEncoderTransformer(noise_factor=0.5, **params).fit(X_train)

    noisy = add_noise(plain, X_test, 0.5, random_state=1)
    noisy_error = np.mean((noisy - X_test) ** 2)

    def error(model):
        cleaned = model.inverse_transform(model.transform(noisy))
        return np.mean((cleaned - X_test) ** 2)

    assert error(denoiser) < 0.8 * error(plain)
    assert error(denoiser) < 0.5 * noisy_error
