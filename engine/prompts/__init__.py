"""Text in, tokens out and back: the tokenizer, the FIM prompt layout, token healing, the stop
rules that cut a completion and the suggestion pipeline that applies them at a cursor, and the
byte-level BPE the demo and tiny checkpoints ship."""
