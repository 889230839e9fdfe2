"""Data files shipped with rebal (the sample book under `sample/`), read as package data."""
