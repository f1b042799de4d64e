"""Encryption of stored refresh tokens (AES-256-GCM, keys in the secret store).

A ciphertext reads `v1.<key id>.<base64url(nonce || ciphertext+tag)>`: the key
id lets `rotate-key` switch keys while every older ciphertext still decrypts,
and the user id is bound as associated data so a row's token cannot be copied
onto another user.
"""

from shared.crypto.cipher import TokenCipher, TokenDecryptError, get_token_cipher, key_id_of

__all__ = ["TokenCipher", "TokenDecryptError", "get_token_cipher", "key_id_of"]
