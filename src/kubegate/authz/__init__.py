"""Authorization: request attributes -> allow / deny / no opinion (pure decision cores)."""
