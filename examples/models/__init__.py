"""Forecasting models of the long-term forecasting example, built on tf_tsembed's public layers."""
