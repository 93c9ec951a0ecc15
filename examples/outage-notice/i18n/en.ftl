outage-notice-tab = Outages
outage-notice-current = Current outage
