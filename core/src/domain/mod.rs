//! Pure rules: no IO, no async. Each module names the SPEC section it implements.
