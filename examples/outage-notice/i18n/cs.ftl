outage-notice-tab = Výpadky
outage-notice-current = Aktuální výpadek
