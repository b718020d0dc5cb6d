"""Sweep results: schema (every column and file name), rows, the live sink (a Ray Tune
callback), parted tables and the sweep folder's readers, storage (a folder or an object
store), provenance, rebuild, export, load and the catalog. Importing the package imports
nothing heavy: each module brings its own dependencies."""
