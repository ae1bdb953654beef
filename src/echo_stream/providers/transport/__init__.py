"""The upstream boundary: client protocol and limits (`base`), errors and their mapping to
`EchoError`s (`errors`), the URL builder (`urls`), the retry rule (`retry`), and the production
client (`fastclient` over `connection` and `pool`)."""
