"""What protects customers and their data: personal data, prompt injection, the output policy, erasure and retention."""
