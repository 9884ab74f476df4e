"""Test support shipped with the platform: throwaway PostgreSQL and Redis servers."""
