"""The whole kcheckpoint exception tree.

::

    KCheckpointError                 base; carries an optional one-line ``hint``
    ├── InputError                   the input cannot be opened or is not an archive   (exit 3)
    │   ├── ArchiveNotFound          (also FileNotFoundError)
    │   ├── NotAnArchive             no tar and no known compression
    │   ├── MemberNotFound           (also LookupError)
    │   ├── UnsafeOutput             a write would leave the output directory or overwrite
    │   └── RemoteInputError         a remote input cannot be reached, listed or is refused
    ├── FormatError                  the archive opens, but its content is wrong        (exit 4)
    │   ├── CorruptCompression       gzip/bzip2/xz/zstd data is damaged
    │   ├── TruncatedArchive         the tar stream ends early
    │   ├── CorruptArchive           a tar header is damaged
    │   ├── NotACheckpoint           a tar, but not a container checkpoint
    │   ├── DigestMismatch           the bytes do not hash to the digest the server gave
    │   └── ImageError               a CRIU image cannot be decoded
    │       ├── BadImageMagic
    │       ├── UnknownImageType
    │       ├── ProtobufDecodeError
    │       └── TruncatedImage
    └── CaptureError                 the capture service or its runtime failed          (exit 5)
        ├── RuntimeUnavailable       the CRI socket does not answer
        ├── PodNotFound
        ├── ContainerNotFound
        ├── ContainerNotRunning
        ├── CheckpointUnsupported    the runtime has no checkpoint support
        ├── CheckpointTimeout
        ├── CheckpointFailed         any other runtime failure (keeps the gRPC code)
        ├── ServiceBusy              the capture service is at its concurrency limit
        └── TransferError            a download failed or did not verify
            └── RegistryError        a registry refused or broke off a push

Low-level exceptions are translated once, where they happen, with ``raise ... from``. None of
these derive from EOFError or KeyboardInterrupt: the CLI framework would take them for Ctrl-D.
"""

from __future__ import annotations


class KCheckpointError(Exception):
    """Base of every error kcheckpoint raises on purpose."""

    #: A short suggestion shown as ``hint: ...`` under the error line.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(KCheckpointError):
    """The input cannot be opened, or it is not an archive at all."""


class ArchiveNotFound(InputError, FileNotFoundError):
    """The archive path does not exist or cannot be read."""


class NotAnArchive(InputError):
    """The input is neither a tar nor a compressed tar."""

    hint = "kcheckpoint reads tar archives, plain or compressed with gzip, bzip2, xz or zstd"


class MemberNotFound(InputError, LookupError):
    """A member the user asked for is not in the archive."""


class UnsafeOutput(InputError):
    """Writing would leave the output directory or overwrite a file."""


class RemoteInputError(InputError):
    """A remote input (a URL, an object, a listing) cannot be reached, or the server refused it."""


class FormatError(KCheckpointError):
    """The archive opens, but its content is damaged or not what it should be."""


class CorruptCompression(FormatError):
    """The compressed stream is damaged."""


class TruncatedArchive(FormatError):
    """The tar stream ends before its last member does."""

    hint = "the archive was probably cut short during copy or download"


class CorruptArchive(FormatError):
    """A tar header is damaged."""


class NotACheckpoint(FormatError):
    """A tar archive that holds no container checkpoint."""

    hint = "a checkpoint holds config.dump, spec.dump and a checkpoint/ directory"


class DigestMismatch(FormatError):
    """The bytes read do not hash to the digest their server advertised."""

    hint = "the archive changed or was damaged in transit"


class ImageError(FormatError):
    """A CRIU image cannot be decoded."""


class BadImageMagic(ImageError):
    """A CRIU image starts with a magic that does not match its name."""


class UnknownImageType(ImageError):
    """A CRIU image whose type kcheckpoint does not read."""


class ProtobufDecodeError(ImageError):
    """A CRIU image entry is not a valid protobuf message."""


class TruncatedImage(ImageError):
    """A CRIU image ends in the middle of an entry."""


class CaptureError(KCheckpointError):
    """The capture service, its client or the CRI runtime failed."""


class RuntimeUnavailable(CaptureError):
    """The CRI runtime does not answer on its socket."""


class PodNotFound(CaptureError):
    """No pod sandbox has that namespace and name."""


class ContainerNotFound(CaptureError):
    """The pod has no container of that name."""


class ContainerNotRunning(CaptureError):
    """The container exists but is not running, so it cannot be checkpointed."""


class CheckpointUnsupported(CaptureError):
    """The runtime does not implement CheckpointContainer."""


class CheckpointTimeout(CaptureError):
    """The runtime did not finish the checkpoint before the deadline."""


class CheckpointFailed(CaptureError):
    """The runtime failed to checkpoint the container."""

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class ServiceBusy(CaptureError):
    """The capture service already runs as many checkpoints as it allows (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class TransferError(CaptureError):
    """A download failed, was cut short or did not match its digest."""


class RegistryError(TransferError):
    """A registry refused a push or broke it off; the image's tag was not written."""
