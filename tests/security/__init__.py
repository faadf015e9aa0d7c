"""The security suite: each attack fails against the app and succeeds against a weakened build."""
