"""Customer lifetime value (CONTRACTS §8): future spend per household and product group."""
