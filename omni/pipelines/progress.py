"""One progress bar per generation: every chunk's denoising steps and decodes, the current stage in its label."""

from __future__ import annotations

from tqdm.auto import tqdm


class RunProgress:
    """Counts denoising steps and decodes across a run's chunks (extend makes several) on one bar.

    The bar's total is known once the first chunk says how many units it has: chunks x (steps + decodes).
    """

    def __init__(self, enabled: bool = True, chunks: int = 1):
        self.enabled = enabled
        self.chunks = chunks
        self.chunk = 0
        self._bar: tqdm | None = None

    def _open(self) -> tqdm:
        if self._bar is None:
            self._bar = tqdm(disable=not self.enabled, leave=False, unit="step", dynamic_ncols=True)
        return self._bar

    def start_chunk(self) -> None:
        self.chunk += 1

    def expect(self, units: int) -> None:
        """The chunk has `units` denoising steps and decodes; every chunk is taken to be as long."""
        bar = self._open()
        if bar.total is None:
            bar.total = units * self.chunks
            bar.refresh()

    def stage(self, name: str) -> None:
        """Show what the run is doing now, e.g. "chunk 2/3 decoding video"."""
        prefix = f"chunk {self.chunk}/{self.chunks} " if self.chunks > 1 else ""
        self._open().set_description(prefix + name)

    def advance(self, units: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(units)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
