"""Releasing a challenger: probation, approval, the move, and the audit trail."""
