Feature: The front has no single point of failure
  As an operator I need the database and API clients to reach the front at one address that
  survives losing the HAProxy member behind it, so that losing one proxy is not an outage.

  Background:
    Given the lab is up

  @failover @front
  Scenario: Losing the HAProxy member that holds the front address keeps clients going
    Given haproxy has its full membership
    And a client writes to galera continuously
    When the haproxy member holding the front address is lost
    Then the client's writes to galera go on within 10 seconds
    And the longest write gap of galera is at most 2 seconds
    And every acknowledged write to galera is still there
    When the lost haproxy members come back
    Then every member of haproxy is healthy and agrees on the membership within 120 seconds
