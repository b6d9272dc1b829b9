"""The service runtime behind `mailer run`: the scheduler, the parts beside it, due work."""
