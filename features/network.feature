@network
Feature: A server on the lab's provider network answers the other pods
  As an operator I need neutron to bind a server's port on its compute host, and the guest to be
  reachable from the rest of the lab on the provider network: a flat network that is the lab
  bridge's own segment. The address is static: neutron fixes it on the port, and the guest
  takes the same one from its kernel command line (the lab runs no DHCP agent).

  Background:
    Given the lab is up

  Scenario: A server's port is bound by the Open vSwitch agent and the guest answers ping
    When a server is created on the lab network with the address its guest configures
    Then the server is ACTIVE within 240 seconds
    And its port is ACTIVE and bound to its compute host by the Open vSwitch agent
    And the guest answers ping from pod haproxy-0 within 120 seconds
    And the guest serves its web page to pod haproxy-0
