"""Content encoders (whisper PPG, HuBERT-soft units) and the content-extraction stage.

Importing this package does not import torch: backends load on first use. See
:mod:`svc_core.content.base` for the frame convention (16 kHz in, 50 frames/s out,
``N = ceil(T / 320)``).
"""

from svc_core.content.base import (
    CONTENT_HOP,
    CONTENT_RATE,
    CONTENT_SR,
    ENCODERS,
    ContentEncoder,
    clear_model_cache,
    content_frames,
    get_encoder_class,
    make_encoder,
)
from svc_core.content.extract import ContentExtractor, ContentParams, extract_content

__all__ = [
    "CONTENT_HOP",
    "CONTENT_RATE",
    "CONTENT_SR",
    "ENCODERS",
    "ContentEncoder",
    "ContentExtractor",
    "ContentParams",
    "clear_model_cache",
    "content_frames",
    "extract_content",
    "get_encoder_class",
    "make_encoder",
]
