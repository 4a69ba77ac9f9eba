"""Wire models: what the API accepts and returns, mirroring OpenAI's spec. No storage here."""
