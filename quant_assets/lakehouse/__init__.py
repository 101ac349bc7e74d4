"""lakehouse"""
