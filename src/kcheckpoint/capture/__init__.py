"""The capture service: the kubelet Checkpoint API over CRI, with download, retention and audit.

Imported only by ``kcheckpoint serve`` and ``kcheckpoint capture``; the inspection side never
imports it.
"""
