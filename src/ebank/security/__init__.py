"""Authentication: passwords and PINs, one-time SMS codes, token codes (TOTP), lockout."""
