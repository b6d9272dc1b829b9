"""Regional meetings: events, RSVPs with capacity and a waiting list, calendar files, reminders.

`models` holds the tables, `queries` every SQL statement, `service` the rules (create, edit,
cancel, answer, remind), `ical` the iCalendar each invitation carries (`vtimezone` its
time-zone rules), `itip` reading the REPLY a calendar sends back and `replies` recording it as
an answer, and `dates` how times read in Dutch and English. Nothing here sends mail or knows
the web: adapters call in and pass what they need.
"""
