"""raman-baseline: ResUNet-1D fluorescence baseline removal for Raman spectra.

The library is pure and small; ``pipeline.cli`` holds the DVC stage entry points and the user
commands (``raman-baseline --help``).
"""
