"""Documents of every kind and a test double embedder, shared by the knowledge-base tests."""

from __future__ import annotations

import io

import numpy as np

from botkit.knowledge.index import query_terms

MARKDOWN = """# Resetting your password

If you forgot your password, open the login page and choose "Forgot password". We e-mail you a link.

## Changing it

Go to Settings, then Security, to change your password at any time.
"""

HTML = """<html><head><title>Shipping | Shop</title><script>var secret = "do not index";</script></head>
<body><nav>Home | Shop | Cart</nav><h1>Shipping</h1><p>Parcels leave our warehouse within <b>two days</b>.</p>
<h2>Abroad</h2><ul><li>Europe: 5 working days.</li><li>Elsewhere: 10 working days.</li></ul></body></html>"""

FAQ = ("question,answer,link\n"
       "Can I pay with PayPal?,\"Yes, we accept PayPal, Visa and Mastercard.\",https://shop.example.com/pay\n"
       "How do I return an item?,Send it back within 30 days with the return label from your account.,\n")


def make_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF with a text layer (Helvetica), as a word processor writes it."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
    text = " ".join(f"({line}) Tj 0 -20 Td" for line in lines)
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 72 720 Td {text} ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class WordVectors:
    """A test double embedder: words hashed to 256 dims (as FakeOpenAI's), stopwords dropped, synonyms folded."""

    name = "words"
    dimensions = 256
    threshold = 0.3

    def __init__(self, synonyms: dict[str, str] | None = None) -> None:
        self.synonyms = synonyms or {}
        self.calls = 0

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        from botkit.testing.fake_openai import embed

        self.calls += 1
        rows = []
        for text in texts:
            words = [self.synonyms.get(w, w) for w in query_terms(text)]
            rows.append(embed(" ".join(words)))
        return np.array(rows, np.float32)
