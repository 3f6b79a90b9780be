"""quag: QUAG and the HiREST Joint baseline for moment retrieval, segmentation and step captioning."""

__version__ = "0.1.0"
