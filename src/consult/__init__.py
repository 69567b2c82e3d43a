"""consult: the consultation data pipeline of the ISG Office (MARD, Viet Nam)."""
