"""OAuth2 sign-in: providers, login flows, tokens in the keyring, and the SASL mechanisms."""
